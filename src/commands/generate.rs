//! `xcbench generate man | completions SHELL`: the man pages and shell completions made
//! from the clap definitions themselves, so they cannot drift from `--help` (the package
//! installs them; `scripts/package` asks the binary, as ripgrep's `rg --generate` does).

use std::path::Path;

use clap::CommandFactory;

use super::{CommandError, Outcome};
use crate::cli::{Cli, Generate};

pub(crate) fn run(what: Generate) -> Result<Outcome, CommandError> {
    let mut command = Cli::command();
    match what {
        Generate::Man { dir: None } => clap_mangen::Man::new(command)
            .render(&mut std::io::stdout().lock())
            .map_err(CommandError::failed)?,
        Generate::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir).map_err(|e| {
                CommandError::usage(format!("--dir {}: cannot create: {e}", dir.display()))
            })?;
            command.build();
            write_pages(&command, "xcbench", &dir)?;
        }
        Generate::Completions { shell } => clap_complete::generate(
            shell,
            &mut command,
            "xcbench",
            &mut std::io::stdout().lock(),
        ),
    }
    Ok(Outcome::OK)
}

/// `name.1` for `command`, then a page for each visible subcommand, named by its path
/// (`xcbench-mesh-check.1`).
fn write_pages(command: &clap::Command, name: &str, dir: &Path) -> Result<(), CommandError> {
    let page = command.clone().name(name.to_owned());
    let mut text = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut text)
        .map_err(CommandError::failed)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, text).map_err(|e| {
        CommandError::failed(anyhow::anyhow!("{}: cannot write: {e}", path.display()))
    })?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
