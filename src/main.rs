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
    /// Print this agent's certificate fingerprint for peers to pin (generates the key pair
    /// in tls.dir at first use).
    Identity {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Throughput test against a peer agent named in agent.toml (iperf3-like; TCP, UDP or QUIC).
    Bench {
        #[arg(long, short)]
        config: PathBuf,
        /// The peer's id in agent.toml.
        peer: String,
        /// Test length, e.g. 10s.
        #[arg(long, short = 't', default_value = "10s", value_parser = parse_duration)]
        time: Duration,
        /// Leading time left out of the totals (slow start), e.g. 1s.
        #[arg(long, short = 'O', default_value = "0s", value_parser = parse_duration_or_zero)]
        omit: Duration,
        /// Interval between live lines.
        #[arg(long, short = 'i', default_value = "1s", value_parser = parse_duration)]
        interval: Duration,
        /// Parallel streams.
        #[arg(long, short = 'P', default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=128))]
        parallel: u16,
        /// The peer sends (iperf3 -R).
        #[arg(long, short = 'R', conflicts_with = "bidir")]
        reverse: bool,
        /// Both send at once.
        #[arg(long)]
        bidir: bool,
        /// UDP: paced datagrams at --bitrate instead of TCP.
        #[arg(long, short = 'u', conflicts_with = "quic")]
        udp: bool,
        /// QUIC: one quinn connection per stream, windows sized to the path (see --window).
        #[arg(long, short = 'q')]
        quic: bool,
        /// Rate per direction, split over the streams, e.g. 1G, 200M: UDP's sending rate
        /// (default 1M); a cap for TCP and QUIC (none by default).
        #[arg(long, short = 'b', value_parser = parse_bitrate)]
        bitrate: Option<u64>,
        /// Bytes per write (TCP, default 131072) or per datagram (UDP, default 1372).
        #[arg(long, short = 'l')]
        length: Option<u32>,
        /// Congestion control of the senders: a kernel name for TCP (cubic, bbr, ...), or
        /// cubic, newreno or bbr for QUIC.
        #[arg(long, short = 'C')]
        congestion: Option<String>,
        /// TCP: socket buffer size (SO_SNDBUF/SO_RCVBUF) in bytes; kernel autotuning without
        /// it. QUIC: the flow-control windows; twice the BDP of 10 Gbit/s at the control
        /// connection's RTT (8 MiB to 256 MiB) without it.
        #[arg(long, short = 'w')]
        window: Option<u32>,
        /// Print iperf3-shaped JSON instead of lines and a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the collector: snapshot ingest and /metrics.
    Collector {
        /// collector.toml; without it the defaults apply (listen 127.0.0.1:9862).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// An emulated Azure-OCI interconnect in network namespaces (Linux, root).
    Lab {
        #[command(subcommand)]
        command: LabCommand,
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

#[derive(Subcommand)]
enum LabCommand {
    /// Create the namespaces and start the link emulator (first removes a crashed lab).
    Up {
        /// Lab name: namespaces are NAME-azure, NAME-oci, ...
        #[arg(long, default_value = "xcb")]
        name: String,
        /// clean, eastus-ashburn, uksouth-london, canadacentral-toronto,
        /// westeurope-amsterdam, lossy, bursty, bufferbloat.
        #[arg(long, default_value = "eastus-ashburn")]
        profile: String,
        /// Hosts per side (2 makes a 2 + 2 mesh).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
        hosts: u8,
        /// Override a profile field, e.g. forward.delay=3ms, loss=1%, rate=200mbit, mtu=1400.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Seed of the emulator's random impairments.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Stop the emulator and delete the namespaces.
    Down {
        #[arg(long, default_value = "xcb")]
        name: String,
    },
    /// Run a command in a host's namespace: lab exec azure -- CMD...
    Exec {
        #[arg(long, default_value = "xcb")]
        name: String,
        host: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Print the emulator's ground truth (JSON).
    Truth {
        #[arg(long, default_value = "xcb")]
        name: String,
    },
    /// The emulator process itself (started by `lab up`).
    #[command(hide = true)]
    Emulate {
        #[arg(long)]
        state_dir: std::path::PathBuf,
    },
}

fn parse_timestamps(s: &str) -> Result<xcbench_snapshot::TimestampSource, String> {
    s.parse()
}

/// `1G`, `200M`, `500k`, `1000000` (bits per second, decimal prefixes as iperf3's -b).
fn parse_bitrate(s: &str) -> Result<u64, String> {
    xcbench_agent::config::parse_rate(s)
        .ok_or_else(|| format!("{s:?}: must be a rate such as 1G, 200M or 500k (bits/s)"))
}

fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    if s == "0" || s == "0s" {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
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
    let command = match cli.command {
        Command::Lab { command } => return lab(command),
        other => other,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(dispatch(command))
}

fn lab(command: LabCommand) -> ExitCode {
    use xcbench_lab as lab;
    let result = match command {
        LabCommand::Up {
            name,
            profile,
            hosts,
            sets,
            seed,
        } => {
            let mut link = match lab::LinkProfile::named(&profile) {
                Ok(p) => p,
                Err(e) => return usage_error(&*anyhow::anyhow!("--profile {e}")),
            };
            for s in &sets {
                if let Err(e) = link.set(s) {
                    return usage_error(&*anyhow::anyhow!(e));
                }
            }
            let spec = lab::LabSpec {
                name: name.clone(),
                hosts_per_side: hosts,
                profile: link,
                seed,
            };
            lab::up(&spec).map(|hosts| {
                println!("lab {name} is up: profile {}", spec.profile.name);
                for h in hosts {
                    println!(
                        "  {:<10} {:<15} namespace {}",
                        h.name,
                        h.addr_text(),
                        h.namespace
                    );
                }
                println!("run commands with: xcbench lab exec --name {name} HOST -- CMD");
                println!("ground truth:      xcbench lab truth --name {name}");
            })
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
    finish(result)
}

async fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Lab { command } => lab(command),
        Command::Agent { config } => {
            let config = match xcbench_agent::AgentConfig::load(&config) {
                Ok(c) => c,
                Err(e) => return usage_error(&e),
            };
            finish(xcbench_agent::run(config, shutdown_signal()).await)
        }
        Command::Identity { config } => {
            let path = config;
            let config = match xcbench_agent::AgentConfig::load(&path) {
                Ok(c) => c,
                Err(e) => return usage_error(&e),
            };
            let Some(tls) = &config.tls else {
                eprintln!(
                    "error: {}: tls is not set: QUIC needs a [tls] section with dir, or cert and key",
                    path.display()
                );
                return ExitCode::from(2);
            };
            match xcbench_agent::tls::TlsIdentity::load(&tls.key, config.identity.id.as_str()) {
                Ok(id) => {
                    println!("{}", id.fingerprint);
                    ExitCode::SUCCESS
                }
                Err(e) => finish(Err::<(), _>(e)),
            }
        }
        Command::Bench {
            config,
            peer,
            time,
            omit,
            interval,
            parallel,
            reverse,
            bidir,
            udp,
            quic,
            bitrate,
            length,
            congestion,
            window,
            json,
        } => {
            use xcbench_agent::wire::throughput::{BenchProtocol, Direction, TestSpec};
            let spec = TestSpec {
                protocol: if udp {
                    BenchProtocol::Udp
                } else if quic {
                    BenchProtocol::Quic
                } else {
                    BenchProtocol::Tcp
                },
                direction: if bidir {
                    Direction::Bidirectional
                } else if reverse {
                    Direction::Reverse
                } else {
                    Direction::Forward
                },
                duration_ms: time.as_millis() as u64,
                omit_ms: omit.as_millis() as u64,
                interval_ms: interval.as_millis() as u64,
                streams: parallel,
                write_bytes: length.unwrap_or(if udp { 1372 } else { 131_072 }),
                bitrate_bps: if udp {
                    Some(bitrate.unwrap_or(1_000_000))
                } else {
                    bitrate
                },
                congestion,
                window_bytes: window,
            };
            if let Err(e) = spec.check() {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            let args = xcbench::bench::BenchArgs { config, peer, spec };
            match xcbench::bench::run(&args, !json, |line| println!("{line}")).await {
                Ok(report) if json => {
                    let v = xcbench::bench::render_json(&report);
                    println!("{}", serde_json::to_string_pretty(&v).expect("json"));
                    ExitCode::SUCCESS
                }
                Ok(report) => {
                    print!("{}", xcbench::bench::render_table(&report));
                    ExitCode::SUCCESS
                }
                Err(xcbench::bench::BenchCliError::Usage(e)) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
                Err(e) => finish(Err::<(), _>(e)),
            }
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
