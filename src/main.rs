//! The `xcbench` binary: parses the command line, initialises tracing, calls a library
//! `run`, prints the error chain and picks the exit code (0 ok, 1 failed, 2 usage/config).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "xcbench",
    version,
    about = "Measures the private Azure <-> OCI interconnect"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an agent: STAMP reflector plus probes to the configured peers.
    Agent {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the collector: snapshot ingest and /metrics.
    Collector {
        /// collector.toml; without it the defaults apply (listen 127.0.0.1:9862).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Two loopback agents (azure, oci) and a collector; prints a per-pair table.
    Demo {
        /// How long to probe, e.g. 10s.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        /// Time between probes, e.g. 10ms.
        #[arg(long, default_value = "10ms", value_parser = parse_duration)]
        interval: Duration,
        /// STAMP packet size in bytes (44..=1472 on loopback here).
        #[arg(long, default_value_t = 44, value_parser = clap::value_parser!(u16).range(44..=1472))]
        payload_size: u16,
        /// Print the result as JSON instead of a table (no progress lines).
        #[arg(long)]
        json: bool,
        /// Receive timestamps: kernel (default) or user (to compare with user-space tools).
        #[arg(long, default_value = "kernel", value_parser = parse_timestamps)]
        timestamps: xcbench_snapshot::TimestampSource,
    },
}

fn parse_timestamps(s: &str) -> Result<xcbench_snapshot::TimestampSource, String> {
    s.parse()
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    xcbench_agent::config::parse_duration_text(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s:?}: must be a duration such as \"10s\" or \"10ms\""))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Demo { .. } => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Agent { config } => {
            let config = match xcbench_agent::AgentConfig::load(&config) {
                Ok(c) => c,
                Err(e) => return usage_error(&e),
            };
            finish(xcbench_agent::run(config, shutdown_signal()).await)
        }
        Command::Collector { config } => {
            let config = match config {
                None => Ok(xcbench_collector::CollectorConfig::default()),
                Some(path) => xcbench_collector::CollectorConfig::load(&path),
            };
            let config = match config {
                Ok(c) => c,
                Err(e) => return usage_error(&e),
            };
            finish(xcbench_collector::run(config, shutdown_signal()).await)
        }
        Command::Demo {
            duration,
            interval,
            payload_size,
            json,
            timestamps,
        } => {
            let config = xcbench::demo::DemoConfig {
                duration,
                interval,
                payload_size: usize::from(payload_size),
                json,
                timestamps,
                progress: !json,
            };
            let report =
                xcbench::demo::run(config, shutdown_signal(), |line| println!("{line}")).await;
            match report {
                Ok(report) if json => {
                    let text = serde_json::to_string_pretty(&report.rows).expect("rows serialize");
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Ok(report) => {
                    println!();
                    print!("{}", xcbench::demo::render_table(&report.rows));
                    println!(
                        "/metrics was served at {} during the run (Prometheus text format).",
                        report.metrics_url
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => finish(Err::<(), _>(e)),
            }
        }
    }
}

fn usage_error(e: &dyn std::error::Error) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn finish<E: Into<anyhow::Error>>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {:#}", e.into());
            ExitCode::from(1)
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
