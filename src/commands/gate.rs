//! `xcbench gate`: the verdict's exit code (0 pass, 1 fail, 3 inconclusive), 2 for a bad SLO
//! file or flags, 4 when the source could not be read; the table or JSON on stdout, JUnit
//! and the HTML report in files, and under GitHub Actions its annotations and step summary.

use xcbench::gate::{GateRequest, HttpsTrust, Source};
use xcbench::output;
use xcbench_slo::objective::Window;
use xcbench_slo::GateResult;

use super::{CommandError, Outcome};
use crate::cli::GateArgs;

pub(crate) async fn run(args: GateArgs) -> Result<Outcome, CommandError> {
    let window = match (args.window, args.from, args.to) {
        (Some(d), _, _) => Some(Window::Last(d)),
        (None, Some(from), Some(to)) if from < to => Some(Window::Range {
            from_unix_ns: from,
            to_unix_ns: to,
        }),
        (None, Some(_), Some(_)) => return Err(CommandError::usage("--from must be before --to")),
        _ => None,
    };
    let pins = &args.collector_fingerprint;
    let collectors = args.collector.len();
    if pins.len() > 1 && pins.len() != collectors {
        return Err(CommandError::usage(format!(
            "--collector-fingerprint given {} times for {collectors} --collector: give one per collector, in their order (or --ca)",
            pins.len()
        )));
    }
    let pin = |i: usize| match pins.len() {
        1 => pins.first().copied(),
        _ => pins.get(i).copied(),
    };
    let request = GateRequest {
        slo: args.slo,
        source: match (args.prometheus, args.measure, args.config) {
            (_, Some(duration), Some(config)) => Source::Measure { config, duration },
            (Some(url), _, _) => Source::Prometheus { url },
            _ => Source::Collector {
                urls: args
                    .collector
                    .into_iter()
                    .enumerate()
                    .map(|(i, url)| {
                        let trust = HttpsTrust {
                            pin: pin(i),
                            ca: args.ca.clone(),
                        };
                        (url, trust)
                    })
                    .collect(),
            },
        },
        window,
        now_unix_ns: xcbench_agent::net::clock::now_unix_ns(),
        https: HttpsTrust {
            pin: pins.first().copied(),
            ca: args.ca,
        },
    };
    let (slo, result) = xcbench::gate::run(&request).await.map_err(|e| {
        let code = e.exit_code();
        CommandError::Coded(code, format!("{:#}", anyhow::Error::new(e)))
    })?;
    for s in &slo.skipped {
        eprintln!("xcbench gate: left out {s}");
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, output::gate::render_junit(&result)).map_err(|e| {
            CommandError::usage(format!("--junit {}: cannot write: {e}", path.display()))
        })?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, output::report::render_report(&result)).map_err(|e| {
            CommandError::usage(format!("--report {}: cannot write: {e}", path.display()))
        })?;
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
        github(&result, args.json);
    }
    Ok(Outcome(result.exit_code))
}

/// Under GitHub Actions: the annotations (on stderr when stdout is the JSON: workflow
/// commands are read from the job's output) and the step summary.
fn github(result: &GateResult, json: bool) {
    let annotations = output::gate::github_annotations(result);
    if json {
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
            .and_then(|mut f| f.write_all(output::gate::github_summary(result).as_bytes()));
        if let Err(e) = written {
            eprintln!("xcbench gate: GITHUB_STEP_SUMMARY {path:?}: cannot write: {e}");
        }
    }
}
