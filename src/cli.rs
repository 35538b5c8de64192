//! The command line: clap definitions, and the flags of `xcbench bench` as the request the
//! agent library checks ([`BenchArgs::spec`]); defaults come from
//! `xcbench_agent::config::defaults`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use xcbench_agent::config::defaults;
use xcbench_agent::wire::throughput::{Direction, Protocol, TestSpec};
use xcbench_agent::wire::UNAUTH_LEN;
use xcbench_slo::text::span;

#[derive(Parser)]
#[command(
    name = "xcbench",
    version,
    about = "Measures the private Azure <-> OCI interconnect"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run an agent: STAMP reflector plus probes to the configured peers.
    Agent {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print this agent's certificate fingerprint for peers to pin (generates the key pair
    /// in tls.dir at first use).
    /// Or, with --collector, the collector's (from its [tls] section), for agents and the
    /// gate to pin.
    Identity {
        #[arg(
            long,
            short,
            required_unless_present = "collector",
            conflicts_with = "collector"
        )]
        config: Option<PathBuf>,
        /// A collector.toml instead of an agent.toml.
        #[arg(long, value_name = "collector.toml")]
        collector: Option<PathBuf>,
    },
    /// Before deploying: checks toward every peer in agent.toml that its address is private,
    /// every port the agent uses answers (blocked told apart from nothing listening), the
    /// path MTU, and this host's clock and kernel timestamps; prints the az and oci commands
    /// that open a blocked port. Exit codes: 0 ready, 1 not ready, 2 bad config.
    Preflight {
        #[arg(long, short)]
        config: PathBuf,
        /// How long to wait for each answer (each port is tried up to three times).
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        timeout: Duration,
        /// The report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Throughput test against a peer agent named in agent.toml (iperf3-like; TCP, UDP or QUIC).
    Bench(BenchArgs),
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
    /// Judge an SLO file (pass / fail / inconclusive) from the collector's history. Exit
    /// codes: 0 pass, 1 fail, 2 usage or SLO file error, 3 inconclusive, 4 the data source
    /// could not be read.
    Gate(GateArgs),
    /// What an SLO file becomes besides the gate's verdict (Prometheus rules).
    Slo {
        #[command(subcommand)]
        command: SloCommand,
    },
    /// The mesh file: one file for both sides, from which every agent derives its peers.
    Mesh {
        #[command(subcommand)]
        command: MeshCommand,
    },
    /// Two loopback agents (azure, oci) and a collector; prints a per-pair table.
    Demo(DemoArgs),
    /// Print the man page or a shell's completions, made from these very definitions (what
    /// the Debian package installs).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
}

/// What `xcbench generate` prints.
#[derive(Subcommand)]
pub(crate) enum Generate {
    /// The man pages (roff): xcbench(1) on stdout; with --dir, it and one page per
    /// subcommand (xcbench-agent(1), xcbench-mesh-check(1), ...) written there.
    Man {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Completions for a shell: bash, zsh or fish.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `xcbench demo`: how long, how often, how big.
#[derive(Args)]
pub(crate) struct DemoArgs {
    /// How long to probe, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time between probes, e.g. 10ms.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// STAMP packet size in bytes (up to 1472 on loopback here).
    #[arg(long, default_value_t = UNAUTH_LEN as u16,
          value_parser = clap::value_parser!(u16).range(UNAUTH_LEN as i64..=1472))]
    pub payload_size: u16,
    /// Print the result as JSON instead of a table (no progress lines).
    #[arg(long)]
    pub json: bool,
    /// Receive timestamps: kernel (default) or user (to compare with user-space tools).
    #[arg(long, default_value = "kernel", value_parser = parse_timestamps)]
    pub timestamps: xcbench_snapshot::TimestampSource,
}

#[derive(Subcommand)]
pub(crate) enum LabCommand {
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
        /// Override a profile field, e.g. forward.delay=3ms, loss=1%, rate=200mbit, mtu=1400;
        /// ecmp.KEY (e.g. ecmp.delay=3ms) adds a second equal-cost path, hashed by 5-tuple.
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
        state_dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum SloCommand {
    /// Write the SLO file's objectives as Prometheus recording rules (error ratios, error
    /// budgets) and multi-window, multi-burn-rate alerts: page for key objectives, ticket
    /// for all. Exit codes: 0 written, 2 usage or SLO file error.
    Rules {
        /// The SLO file: xcbench's YAML format or OpenSLO v1 (see slo/slo.sample.yaml).
        slo: PathBuf,
        #[arg(long, value_parser = parse_duration, help = format!(
            "The period error budgets are spent over (default {}); every alert window scales with it (5m, 30m, 1h, 2h, 6h, 1d, 3d at 30d). From {} to {}",
            days(xcbench_slo::rules::DEFAULT_PERIOD),
            days(xcbench_slo::rules::MIN_PERIOD),
            days(xcbench_slo::rules::MAX_PERIOD)
        ))]
        period: Option<Duration>,
        /// Write the rule file here instead of to stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum MeshCommand {
    /// Validate a mesh file and print its directed pairs, the series the collector will
    /// hold and the network rules each side needs. Exit codes: 0 valid, 2 invalid (the
    /// error names the file, the field, the value and what was expected).
    Check {
        /// The mesh file (see deploy/mesh.sample.toml).
        mesh: PathBuf,
    },
    /// Print the network rules each side needs (the rules `check` lists), one a line with
    /// tab-separated fields: cloud, way, transport, ports (comma-separated), purpose, its
    /// order, the remote end (CIDRs comma-separated, or the collector's host), the purpose in
    /// words. What the deploy scripts read; --json for other tools.
    Rules {
        /// The mesh file.
        mesh: PathBuf,
        /// Only this side's rules.
        #[arg(long, value_parser = parse_side)]
        side: Option<xcbench_snapshot::Cloud>,
        /// One JSON document instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Print one agent of a mesh as the deploy scripts need it, one `key<TAB>value` a line:
    /// id, cloud, region, address, ip, port, quic_address, quic_port, address_space (its
    /// side's, comma-separated), peer_address_space (the other side's). --json for tools.
    Agent {
        /// The mesh file.
        mesh: PathBuf,
        /// The agent's id.
        id: String,
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
}

/// `azure` or `oci`.
fn parse_side(s: &str) -> Result<xcbench_snapshot::Cloud, String> {
    match s.parse() {
        Ok(c @ (xcbench_snapshot::Cloud::Azure | xcbench_snapshot::Cloud::Oci)) => Ok(c),
        _ => Err(format!("{s:?}: expected azure or oci")),
    }
}

/// `xcbench gate`: the SLO file, the source, the window and the outputs.
#[derive(Args)]
pub(crate) struct GateArgs {
    /// The SLO file: xcbench's YAML format or OpenSLO v1 (see slo/slo.sample.yaml).
    #[arg(long)]
    pub slo: PathBuf,
    /// The collector whose history is judged; given once per collector of a sharded mesh,
    /// their histories are merged (exactly: each snapshot is in one of them).
    #[arg(long, value_name = "URL", action = clap::ArgAction::Append,
          default_values_t = [format!("http://{}", xcbench_collector::config::DEFAULT_LISTEN)])]
    pub collector: Vec<String>,
    /// An https:// collector's certificate fingerprint (`xcbench identity --collector
    /// collector.toml` prints it); with several --collector, one each, in their order.
    #[arg(long, value_name = "sha256:HEX", value_parser = parse_fingerprint,
          action = clap::ArgAction::Append)]
    pub collector_fingerprint: Vec<xcbench_agent::tls::Fingerprint>,
    /// A PEM file of CA certificates that vouch for an https:// source's host name.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Judge from a Prometheus-compatible HTTP API (Prometheus, Thanos, Mimir) instead of
    /// the collector, e.g. http://127.0.0.1:9090.
    #[arg(long, value_name = "URL", conflicts_with = "measure")]
    pub prometheus: Option<String>,
    /// Measure instead: run the agent of --config toward its peers for DURATION (e.g. 5m)
    /// and judge every objective over that time; no collector needed.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "config",
          conflicts_with_all = ["window", "from", "to"])]
    pub measure: Option<Duration>,
    /// The agent configuration --measure runs.
    #[arg(long, short, value_name = "agent.toml", requires = "measure")]
    pub config: Option<PathBuf>,
    /// Judge every objective over the last DURATION instead of its own window, e.g. 30m.
    #[arg(long, value_parser = parse_duration, conflicts_with_all = ["from", "to"])]
    pub window: Option<Duration>,
    /// Judge every objective from this time (RFC 3339 or Unix seconds) ...
    #[arg(long, value_parser = parse_time, requires = "to")]
    pub from: Option<u64>,
    /// ... to this time.
    #[arg(long, value_parser = parse_time, requires = "from")]
    pub to: Option<u64>,
    /// Print the result as JSON (schema xcbench.gate/v1) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write JUnit XML here (a test case per objective).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a self-contained HTML report here: per objective the distribution with
    /// its threshold, the series over the window, the verdict and its reasons.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
}

/// Whole days, as `30d`, for help texts.
fn days(d: Duration) -> String {
    format!("{}d", d.as_secs() / 86_400)
}

/// Bits per second as the rate grammar writes them: `1M`, `200k`, `1G`.
fn rate(bps: u64) -> String {
    match bps {
        b if b % 1_000_000_000 == 0 => format!("{}G", b / 1_000_000_000),
        b if b % 1_000_000 == 0 => format!("{}M", b / 1_000_000),
        b if b % 1_000 == 0 => format!("{}k", b / 1_000),
        b => b.to_string(),
    }
}

fn parse_fingerprint(s: &str) -> Result<xcbench_agent::tls::Fingerprint, String> {
    s.parse().map_err(|e: xcbench_snapshot::Expected| e.0)
}

fn parse_time(s: &str) -> Result<u64, String> {
    xcbench_slo::text::parse_time(s).ok_or_else(|| {
        format!("{s:?}: must be an RFC 3339 time such as 2026-11-30T18:00:00Z, or Unix seconds")
    })
}

fn parse_timestamps(s: &str) -> Result<xcbench_snapshot::TimestampSource, String> {
    s.parse().map_err(|e: xcbench_snapshot::Expected| e.0)
}

/// `xcbench bench`: an iperf3-like test against a peer named in agent.toml.
#[derive(Args)]
pub(crate) struct BenchArgs {
    #[arg(long, short)]
    pub config: PathBuf,
    /// The peer's id in agent.toml.
    pub peer: String,
    #[arg(long, short = 't', value_parser = parse_duration,
          help = format!("Test length, e.g. 30s (default {})", span(defaults::THROUGHPUT_DURATION)))]
    pub time: Option<Duration>,
    /// Leading time left out of the totals (slow start), e.g. 1s.
    #[arg(long, short = 'O', default_value = "0s", value_parser = parse_duration_or_zero)]
    pub omit: Duration,
    #[arg(long, short = 'i', value_parser = parse_duration,
          help = format!("Interval between live lines (default {})", span(defaults::THROUGHPUT_INTERVAL)))]
    pub interval: Option<Duration>,
    /// Parallel streams.
    #[arg(long, short = 'P', default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=128))]
    pub parallel: u16,
    /// The peer sends (iperf3 -R).
    #[arg(long, short = 'R', conflicts_with = "bidir")]
    pub reverse: bool,
    /// Both send at once.
    #[arg(long)]
    pub bidir: bool,
    /// UDP: paced datagrams at --bitrate instead of TCP.
    #[arg(long, short = 'u', conflicts_with = "quic")]
    pub udp: bool,
    /// QUIC: one quinn connection per stream, windows sized to the path (see --window).
    #[arg(long, short = 'q')]
    pub quic: bool,
    #[arg(long, short = 'b', value_parser = parse_bitrate, help = format!(
        "Rate per direction, split over the streams, e.g. 1G, 200M: UDP's sending rate (default {}); a cap for TCP and QUIC (none by default)",
        rate(defaults::THROUGHPUT_UDP_RATE_BPS)
    ))]
    pub bitrate: Option<u64>,
    #[arg(long, short = 'l', help = format!(
        "Bytes per write (TCP, default {}) or per datagram (UDP, default {})",
        defaults::write_bytes(Protocol::Tcp),
        defaults::write_bytes(Protocol::Udp)
    ))]
    pub length: Option<u32>,
    /// Congestion control of the senders: a kernel name for TCP (cubic, bbr, ...), or
    /// cubic, newreno or bbr for QUIC.
    #[arg(long, short = 'C')]
    pub congestion: Option<String>,
    /// TCP: socket buffer size (SO_SNDBUF/SO_RCVBUF) in bytes; kernel autotuning without
    /// it. QUIC: the flow-control windows; twice the BDP of 10 Gbit/s at the control
    /// connection's RTT (8 MiB to 256 MiB) without it.
    #[arg(long, short = 'w')]
    pub window: Option<u32>,
    /// Print iperf3-shaped JSON instead of lines and a table.
    #[arg(long)]
    pub json: bool,
}

impl BenchArgs {
    /// The request these flags make, with the library's defaults; `Test::try_from` checks
    /// it.
    pub(crate) fn spec(&self) -> TestSpec {
        let protocol = match (self.udp, self.quic) {
            (true, _) => Protocol::Udp,
            (_, true) => Protocol::Quic,
            _ => Protocol::Tcp,
        };
        let ms = |d: Duration| d.as_millis() as u64;
        TestSpec {
            protocol,
            direction: match (self.bidir, self.reverse) {
                (true, _) => Direction::Bidirectional,
                (_, true) => Direction::Reverse,
                _ => Direction::Forward,
            },
            duration_ms: ms(self.time.unwrap_or(defaults::THROUGHPUT_DURATION)),
            omit_ms: ms(self.omit),
            interval_ms: ms(self.interval.unwrap_or(defaults::THROUGHPUT_INTERVAL)),
            streams: self.parallel,
            write_bytes: self.length.unwrap_or(defaults::write_bytes(protocol)),
            bitrate_bps: match protocol {
                Protocol::Udp => Some(self.bitrate.unwrap_or(defaults::THROUGHPUT_UDP_RATE_BPS)),
                Protocol::Tcp | Protocol::Quic => self.bitrate,
            },
            congestion: self.congestion.clone(),
            window_bytes: self.window,
        }
    }
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
    match xcbench_agent::config::parse_duration_text(s) {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(format!("{s:?}: must be more than 0, e.g. \"10ms\"")),
        None => Err(format!(
            "{s:?}: must be a duration such as \"10s\" or \"10ms\""
        )),
    }
}
