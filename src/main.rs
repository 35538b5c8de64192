//! The `xcbench` binary: parses the command line, initialises tracing, runs the command
//! (`commands/`, one module each) and picks the exit code once: 0 ok, 1 failed, 2 usage or
//! configuration error; `xcbench gate` adds 3 inconclusive and 4 the data source could not
//! be read.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Demo(_) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli.command) {
        Ok(outcome) => ExitCode::from(outcome.0),
        Err(e) => {
            eprintln!("error: {}", e.message());
            ExitCode::from(e.exit_code())
        }
    }
}
