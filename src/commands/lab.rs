//! `xcbench lab`: namespaces and the link emulator, in threads of their own (no runtime).

use xcbench_lab as lab;

use super::{CommandError, Outcome};
use crate::cli::LabCommand;

pub(crate) fn run(command: LabCommand) -> Result<Outcome, CommandError> {
    let result = match command {
        LabCommand::Up {
            name,
            profile,
            hosts,
            sets,
            seed,
        } => {
            let mut link = lab::LinkProfile::named(&profile)
                .map_err(|e| CommandError::usage(format_args!("--profile {e}")))?;
            for s in &sets {
                link.set(s).map_err(CommandError::usage)?;
            }
            let spec = lab::LabSpec {
                name: name.clone(),
                hosts_per_side: hosts,
                profile: link,
                seed,
            };
            lab::up(&spec).map(|hosts| print!("{}", hosts_table(&name, &spec, &hosts)))
        }
        LabCommand::Down { name } => lab::down(&name),
        LabCommand::Truth { name } => lab::truth(&name).map(|t| println!("{t}")),
        LabCommand::Exec {
            name,
            host,
            command,
        } => lab::exec_command(&name, &host, &command).and_then(|mut c| {
            use std::os::unix::process::CommandExt;
            Err(lab::LabError::Io(format!("exec: {}", c.exec())))
        }),
        LabCommand::Emulate { state_dir } => lab::emulate(&state_dir),
    };
    result.map_err(CommandError::failed)?;
    Ok(Outcome::OK)
}

/// What `lab up` prints: the hosts, their addresses and namespaces, and what to run next.
fn hosts_table(name: &str, spec: &lab::LabSpec, hosts: &[lab::Host]) -> String {
    let mut out = format!("lab {name} is up: profile {}\n", spec.profile.name);
    for h in hosts {
        out += &format!(
            "  {:<10} {:<15} namespace {}\n",
            h.name,
            h.addr_text(),
            h.namespace
        );
    }
    out += &format!("run commands with: xcbench lab exec --name {name} HOST -- CMD\n");
    out += &format!("ground truth:      xcbench lab truth --name {name}\n");
    out
}
