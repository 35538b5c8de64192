//! `xcbench mesh check | rules | agent`: the report, the rules or one agent on stdout; an
//! invalid mesh exits 2 with the error naming the file, the field and the value.

use std::path::Path;

use xcbench::output;
use xcbench_agent::config::mesh::MeshFile;

use super::{CommandError, Outcome};
use crate::cli::MeshCommand;

pub(crate) fn run(command: MeshCommand) -> Result<Outcome, CommandError> {
    let load = |path: &Path| MeshFile::load(path).map_err(CommandError::usage);
    match command {
        MeshCommand::Check { mesh } => print!("{}", output::mesh::render_check(&load(&mesh)?)),
        MeshCommand::Rules { mesh, side, json } => {
            let m = load(&mesh)?;
            match json {
                true => println!("{:#}", output::mesh::rules_json(&m, side)),
                false => print!("{}", output::mesh::rules_lines(&m, side)),
            }
        }
        MeshCommand::Agent { mesh, id, json } => {
            let m = load(&mesh)?;
            let a = output::mesh::agent(&m, &id).ok_or_else(|| {
                CommandError::usage(format!(
                    "{}: no agent {id:?} in [[azure.agents]] or [[oci.agents]]",
                    mesh.display()
                ))
            })?;
            match json {
                true => println!("{a:#}"),
                false => print!("{}", output::mesh::agent_lines(&a)),
            }
        }
    }
    Ok(Outcome::OK)
}
