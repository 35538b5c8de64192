//! The `xcbench` binary: parses the command line, initialises tracing, dispatches to a
//! library, prints the error chain and picks the exit code: 0 ok, 1 failed, 2 usage or
//! configuration error; `xcbench gate` adds 3 inconclusive and 4 the data source could not
//! be read.

mod cli;

use std::fmt::Display;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cli::{BenchArgs, Cli, Command, GateArgs, LabCommand, MeshCommand, SloCommand};
use xcbench::{demo, output, service};
use xcbench_agent::net::throughput::{Client, ThroughputError};
use xcbench_agent::probe::throughput::Test;

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
    // The lab runs namespaces and its emulator in threads of its own: no async runtime.
    let command = match cli.command {
        Command::Lab { command } => return lab(command),
        Command::Slo { command } => return slo(command),
        Command::Mesh { command } => return mesh(command),
        other => other,
    };
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(dispatch(command)),
        Err(e) => failed(anyhow::Error::new(e).context("cannot start the async runtime")),
    }
}

async fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Lab { command } => lab(command),
        Command::Slo { command } => slo(command),
        Command::Mesh { command } => mesh(command),
        Command::Agent { config } => match xcbench_agent::AgentConfig::load(&config) {
            Ok(c) => match run_agent(c).await {
                // cloud = "auto" without instance metadata: the remedy is the config file.
                Err(e @ xcbench_agent::AgentError::Metadata(_)) => usage(e),
                // A mesh that does not parse or apply, or a collector serving none.
                Err(xcbench_agent::AgentError::Mesh(e)) if e.is_config() => usage(e),
                result => finish(result),
            },
            Err(e) => usage(e),
        },
        Command::Identity {
            config: Some(config),
            ..
        } => identity(&config),
        Command::Identity {
            collector: Some(collector),
            ..
        } => collector_identity(&collector),
        Command::Identity { .. } => usage("identity needs --config or --collector"),
        Command::Preflight {
            config,
            timeout,
            json,
        } => preflight(&config, timeout, json).await,
        Command::Gate(args) => gate(args).await,
        Command::Bench(args) => bench(args).await,
        Command::Collector { config } => {
            let config = match config {
                None => Ok(xcbench_collector::CollectorConfig::default()),
                Some(path) => xcbench_collector::CollectorConfig::load(&path),
            };
            match config {
                Ok(c) => finish(run_collector(c).await),
                Err(e) => usage(e),
            }
        }
        Command::Demo {
            duration,
            interval,
            payload_size,
            json,
            timestamps,
        } => {
            let config = demo::DemoConfig {
                duration,
                interval,
                payload_size: usize::from(payload_size),
                timestamps,
                progress: !json,
            };
            let progress = |p: demo::Progress<'_>| println!("{}", output::demo::progress(&p));
            match demo::run(config, shutdown_signal(), progress).await {
                Ok(report) if json => {
                    let text = serde_json::to_string_pretty(&report.rows).expect("rows serialize");
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Ok(report) => {
                    println!();
                    print!("{}", output::demo::render_table(&report.rows));
                    println!(
                        "/metrics was served at {} during the run (Prometheus text format).",
                        report.metrics_url
                    );
                    match &report.gate {
                        Ok(gate) => {
                            println!();
                            print!("{}", output::gate::render_table(gate));
                            let path = std::env::temp_dir().join("xcbench-demo-report.html");
                            match std::fs::write(&path, output::report::render_report(gate)) {
                                Ok(()) => println!(
                                    "The gate's HTML report: {} (xcbench gate --report writes one for any SLO file).",
                                    path.display()
                                ),
                                Err(e) => eprintln!("cannot write {}: {e}", path.display()),
                            }
                        }
                        Err(e) => eprintln!("the demo's SLO could not be judged: {e:#}"),
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => failed(e),
            }
        }
    }
}

/// `xcbench preflight`: exit 0 when every peer is reachable as the agent needs, 1 when not.
async fn preflight(path: &std::path::Path, timeout: std::time::Duration, json: bool) -> ExitCode {
    let config = match xcbench_agent::AgentConfig::load(path) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let lookup = xcbench_agent::net::metadata::Lookup::default();
    let config = match xcbench_agent::net::metadata::resolve(config, &lookup).await {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    // With a mesh, its peers (read from the file or fetched from the collector).
    let config = match xcbench_agent::net::mesh::resolve(config).await {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let report = match tokio::task::spawn_blocking(move || {
        xcbench::preflight::run(&config, timeout)
    })
    .await
    {
        Ok(r) => r,
        Err(e) => return failed(anyhow::Error::new(e).context("preflight stopped")),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serialises")
        );
    } else {
        print!("{}", output::preflight::render(&report));
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `xcbench identity`: the certificate fingerprint for peers to pin.
/// `xcbench identity --collector`: the collector's fingerprint (its key pair generated in
/// tls.dir at first use).
fn collector_identity(path: &std::path::Path) -> ExitCode {
    let config = match xcbench_collector::CollectorConfig::load(path) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let Some(tls) = &config.tls else {
        return usage(format_args!(
            "{}: tls is not set: an HTTPS collector needs a [tls] section with dir, or cert and key",
            path.display()
        ));
    };
    match xcbench_agent::tls::TlsIdentity::load(&tls.key, "xcbench-collector") {
        Ok(id) => {
            println!("{}", id.fingerprint);
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

fn identity(path: &std::path::Path) -> ExitCode {
    let config = match xcbench_agent::AgentConfig::load(path) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let Some(tls) = &config.tls else {
        return usage(format_args!(
            "{}: tls is not set: QUIC needs a [tls] section with dir, or cert and key",
            path.display()
        ));
    };
    match xcbench_agent::tls::TlsIdentity::load(&tls.key, config.identity.id.as_str()) {
        Ok(id) => {
            println!("{}", id.fingerprint);
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

/// `xcbench bench`: the test the flags ask for, against the peer named in agent.toml.
async fn bench(args: BenchArgs) -> ExitCode {
    let test = match Test::try_from(args.spec()) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    let config = match xcbench_agent::AgentConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let file = args.config.display().to_string();
    let client = match Client::from_config(&config, &file, &args.peer) {
        Ok(c) => c,
        Err(e) => return usage(anyhow::Error::new(e)),
    };
    let live = !args.json;
    if live {
        for line in output::bench::opening(&args.peer, client.peer(), &test) {
            println!("{line}");
        }
    }
    let mut lines = output::bench::Live::new(&test);
    let result = client
        .run(test, |iv| {
            if let Some(line) = lines.push(iv).filter(|_| live) {
                println!("{line}");
            }
        })
        .await;
    match result {
        Ok(report) if args.json => {
            let v = output::bench::render_json(&report);
            println!("{}", serde_json::to_string_pretty(&v).expect("json"));
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", output::bench::render_table(&report));
            ExitCode::SUCCESS
        }
        Err(e @ ThroughputError::Setup(_)) => usage(anyhow::Error::new(e)),
        Err(e) => failed(e),
    }
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
                Err(e) => return usage(format_args!("--profile {e}")),
            };
            for s in &sets {
                if let Err(e) = link.set(s) {
                    return usage(e);
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

/// `xcbench slo rules`: the rule file on stdout or in `--output`; what was left out on
/// stderr. A bad SLO file or period exits 2.
fn slo(command: SloCommand) -> ExitCode {
    let SloCommand::Rules {
        slo,
        period,
        output,
    } = command;
    let rules = match xcbench::slo::rules(&slo, period) {
        Ok(r) => r,
        Err(e) => return usage(anyhow::Error::new(e)),
    };
    for l in &rules.left_out {
        eprintln!("xcbench slo rules: left out {l}");
    }
    match &output {
        None => print!("{}", rules.yaml),
        Some(path) => {
            if let Err(e) = std::fs::write(path, &rules.yaml) {
                return usage(format!("--output {}: cannot write: {e}", path.display()));
            }
            eprintln!(
                "xcbench slo rules: rules for {} of {} objectives written to {}",
                rules.with_rules,
                rules.objectives,
                path.display()
            );
        }
    }
    ExitCode::SUCCESS
}

/// `xcbench mesh check`: the report on stdout, or the error and exit code 2.
fn mesh(command: MeshCommand) -> ExitCode {
    let load = |path: &std::path::Path| xcbench_agent::config::mesh::MeshFile::load(path);
    match command {
        MeshCommand::Check { mesh } => match load(&mesh) {
            Ok(m) => {
                print!("{}", output::mesh::render_check(&m));
                ExitCode::SUCCESS
            }
            Err(e) => usage(e),
        },
        MeshCommand::Rules { mesh, side, json } => match load(&mesh) {
            Ok(m) if json => {
                println!("{:#}", output::mesh::rules_json(&m, side));
                ExitCode::SUCCESS
            }
            Ok(m) => {
                print!("{}", output::mesh::rules_lines(&m, side));
                ExitCode::SUCCESS
            }
            Err(e) => usage(e),
        },
        MeshCommand::Agent { mesh, id, json } => {
            let m = match load(&mesh) {
                Ok(m) => m,
                Err(e) => return usage(e),
            };
            match output::mesh::agent(&m, &id) {
                Some(a) if json => println!("{a:#}"),
                Some(a) => print!("{}", output::mesh::agent_lines(&a)),
                None => {
                    return usage(format!(
                        "{}: no agent {id:?} in [[azure.agents]] or [[oci.agents]]",
                        mesh.display()
                    ))
                }
            }
            ExitCode::SUCCESS
        }
    }
}

/// `xcbench gate`: the verdict's exit code (0 pass, 1 fail, 3 inconclusive), 2 for a bad
/// SLO file or flags, 4 when the source could not be read.
async fn gate(args: GateArgs) -> ExitCode {
    use xcbench::gate::{GateRequest, Source};
    use xcbench_slo::objective::Window;
    let window = match (args.window, args.from, args.to) {
        (Some(d), _, _) => Some(Window::Last(d)),
        (None, Some(from), Some(to)) if from < to => Some(Window::Range {
            from_unix_ns: from,
            to_unix_ns: to,
        }),
        (None, Some(_), Some(_)) => return usage("--from must be before --to"),
        _ => None,
    };
    let request = GateRequest {
        slo: args.slo,
        source: match (args.prometheus, args.measure, args.config) {
            (_, Some(duration), Some(config)) => Source::Measure { config, duration },
            (Some(url), _, _) => Source::Prometheus { url },
            _ => Source::Collector {
                url: args.collector,
            },
        },
        window,
        now_unix_ns: xcbench_agent::net::clock::now_unix_ns(),
        https: xcbench::gate::HttpsTrust {
            pin: args.collector_fingerprint,
            ca: args.ca,
        },
    };
    let (slo, result) = match xcbench::gate::run(&request).await {
        Ok(r) => r,
        Err(e) => {
            let code = e.exit_code();
            eprintln!("error: {:#}", anyhow::Error::new(e));
            return ExitCode::from(code);
        }
    };
    for s in &slo.skipped {
        eprintln!("xcbench gate: left out {s}");
    }
    if let Some(path) = &args.junit {
        if let Err(e) = std::fs::write(path, output::gate::render_junit(&result)) {
            return usage(format!("--junit {}: cannot write: {e}", path.display()));
        }
    }
    if let Some(path) = &args.report {
        if let Err(e) = std::fs::write(path, output::report::render_report(&result)) {
            return usage(format!("--report {}: cannot write: {e}", path.display()));
        }
        eprintln!("xcbench gate: report written to {}", path.display());
    }
    if args.json {
        // Plain data with no map keys that are not strings: serializing cannot fail.
        let text = serde_json::to_string_pretty(&result).expect("the gate's result serializes");
        println!("{text}");
    } else {
        print!("{}", output::gate::render_table(&result));
    }
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        let annotations = output::gate::github_annotations(&result);
        // Workflow commands are read from the job's output; with --json, stdout is the
        // JSON, so they go to stderr.
        if args.json {
            eprint!("{annotations}");
        } else {
            print!("{annotations}");
        }
        if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            use std::io::Write;
            let written = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .and_then(|mut f| f.write_all(output::gate::github_summary(&result).as_bytes()));
            if let Err(e) = written {
                eprintln!("xcbench gate: GITHUB_STEP_SUMMARY {path:?}: cannot write: {e}");
            }
        }
    }
    ExitCode::from(result.exit_code)
}

/// A usage or configuration error: the whole chain, exit code 2.
fn usage(e: impl Display) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::from(2)
}

/// A failure: the whole error chain, exit code 1.
fn failed(e: impl Into<anyhow::Error>) -> ExitCode {
    eprintln!("error: {:#}", e.into());
    ExitCode::from(1)
}

fn finish<E: Into<anyhow::Error>>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(e),
    }
}

/// The agent as a service: bound (every port taken), then ready for systemd, pinging its
/// watchdog while it runs, stopping on a signal.
async fn run_agent(config: xcbench_agent::AgentConfig) -> Result<(), xcbench_agent::AgentError> {
    // Signals first: a SIGTERM while the metadata is read or ports bound stops it cleanly.
    let shutdown = shutdown_signal();
    let lookup = xcbench_agent::net::metadata::Lookup::default();
    let config = xcbench_agent::net::metadata::resolve(config, &lookup).await?;
    let config = xcbench_agent::net::mesh::resolve(config).await?;
    let agent = xcbench_agent::Agent::bind(config)?;
    let notifier = service::Notifier::from_env().map(Arc::new);
    service::notify(
        notifier.as_ref(),
        "READY=1\nSTATUS=probing and answering probes",
    );
    let pings = notifier.clone().map(|n| tokio::spawn(n.keep_alive()));
    let stopping = notifier.clone();
    let result = agent
        .run(async move {
            shutdown.await;
            service::notify(stopping.as_ref(), "STOPPING=1");
        })
        .await;
    if let Some(p) = pings {
        p.abort();
    }
    result
}

/// The collector as a service, as [`run_agent`].
async fn run_collector(config: xcbench_collector::CollectorConfig) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let collector = xcbench_collector::Collector::bind(&config).await?;
    let addr = collector.local_addr();
    tracing::info!(%addr, "collector listening");
    let notifier = service::Notifier::from_env().map(Arc::new);
    service::notify(
        notifier.as_ref(),
        &format!("READY=1\nSTATUS=listening on {addr}"),
    );
    let pings = notifier.clone().map(|n| tokio::spawn(n.keep_alive()));
    let stopping = notifier.clone();
    let result = collector
        .serve(async move {
            shutdown.await;
            service::notify(stopping.as_ref(), "STOPPING=1");
        })
        .await;
    if let Some(p) = pings {
        p.abort();
    }
    Ok(result?)
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM; the handlers are installed when this is called
/// (not when first awaited), so a signal during start-up is caught too.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
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
