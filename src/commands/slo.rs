//! `xcbench slo rules`: the rule file on stdout or in `--output`; what was left out on
//! stderr. A bad SLO file or period exits 2.

use super::{CommandError, Outcome};
use crate::cli::SloCommand;

pub(crate) fn run(command: SloCommand) -> Result<Outcome, CommandError> {
    let SloCommand::Rules {
        slo,
        period,
        output,
    } = command;
    let rules = xcbench::slo::rules(&slo, period)
        .map_err(|e| CommandError::usage(anyhow::Error::new(e)))?;
    for l in &rules.left_out {
        eprintln!("xcbench slo rules: left out {l}");
    }
    match &output {
        None => print!("{}", rules.yaml),
        Some(path) => {
            std::fs::write(path, &rules.yaml).map_err(|e| {
                CommandError::usage(format!("--output {}: cannot write: {e}", path.display()))
            })?;
            eprintln!(
                "xcbench slo rules: rules for {} of {} objectives written to {}",
                rules.with_rules,
                rules.objectives,
                path.display()
            );
        }
    }
    Ok(Outcome::OK)
}
