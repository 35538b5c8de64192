//! One module per subcommand, each `run(args) -> Result<Outcome, CommandError>`; `main`
//! turns either into the exit code, in one place. Commands that wait on sockets run on a
//! tokio runtime started for them; the others (lab, slo, mesh, identity) need none.
//!
//! # Layout
//! - [`agent`], [`collector`]: the two services (systemd's protocol around each).
//! - [`identity`]: the fingerprint to pin, an agent's or the collector's.
//! - [`preflight`], [`bench`], [`gate`], [`demo`]: checks, tests and verdicts.
//! - [`lab`], [`slo`], [`mesh`]: files and namespaces, no runtime.
//! - [`generate`]: the man pages and shell completions, from the clap definitions.

pub(crate) mod agent;
pub(crate) mod bench;
pub(crate) mod collector;
pub(crate) mod demo;
pub(crate) mod gate;
pub(crate) mod generate;
pub(crate) mod identity;
pub(crate) mod lab;
pub(crate) mod mesh;
pub(crate) mod preflight;
pub(crate) mod slo;

use std::fmt::Display;
use std::future::Future;

use crate::cli::Command;

/// How a command that ran ended: its exit code (0 ok; 1 a check or verdict failed; the
/// gate's 3 inconclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome(pub u8);

impl Outcome {
    pub(crate) const OK: Outcome = Outcome(0);

    /// 0 when `ok`, else 1.
    pub(crate) fn ok_if(ok: bool) -> Outcome {
        Outcome(if ok { 0 } else { 1 })
    }
}

/// Why a command stopped, with its message already rendered (the whole error chain).
#[derive(Debug)]
pub(crate) enum CommandError {
    /// The command line or a configuration file: exit 2.
    Usage(String),
    /// A failure at run time: exit 1.
    Failed(String),
    /// An error with an exit code of its own (the gate's: 4 when its source cannot be read).
    Coded(u8, String),
}

impl CommandError {
    /// A usage or configuration error: `e` with its chain (`{:#}`).
    pub(crate) fn usage(e: impl Display) -> CommandError {
        CommandError::Usage(format!("{e:#}"))
    }

    /// A failure: `e` with its chain.
    pub(crate) fn failed(e: impl Into<anyhow::Error>) -> CommandError {
        CommandError::Failed(format!("{:#}", e.into()))
    }

    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CommandError::Usage(_) => 2,
            CommandError::Failed(_) => 1,
            CommandError::Coded(code, _) => *code,
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            CommandError::Usage(m) | CommandError::Failed(m) | CommandError::Coded(_, m) => m,
        }
    }
}

/// Runs `command`.
pub(crate) fn run(command: Command) -> Result<Outcome, CommandError> {
    match command {
        Command::Lab { command } => lab::run(command),
        Command::Slo { command } => slo::run(command),
        Command::Mesh { command } => mesh::run(command),
        Command::Identity { config, collector } => identity::run(config, collector),
        Command::Agent { config } => on_runtime(agent::run(config)),
        Command::Collector { config } => on_runtime(collector::run(config)),
        Command::Preflight {
            config,
            timeout,
            json,
        } => on_runtime(preflight::run(config, timeout, json)),
        Command::Bench(args) => on_runtime(bench::run(args)),
        Command::Gate(args) => on_runtime(gate::run(args)),
        Command::Demo(args) => on_runtime(demo::run(args)),
        Command::Generate { what } => generate::run(what),
    }
}

/// Runs `f` on a new multi-threaded tokio runtime.
fn on_runtime(
    f: impl Future<Output = Result<Outcome, CommandError>>,
) -> Result<Outcome, CommandError> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| {
        CommandError::failed(anyhow::Error::new(e).context("cannot start the async runtime"))
    })?;
    runtime.block_on(f)
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM; the handlers are installed when this is called
/// (not when first awaited), so a signal during start-up is caught too.
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    async move {
        tokio::select! {
            _ = recv(term.as_mut()) => {}
            _ = recv(int.as_mut()) => {}
        }
    }
}

/// The next delivery of a signal, or never without a handler.
async fn recv(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
