//! `xcbench demo`: two loopback agents and a collector in this process; progress lines, then
//! the per-pair table, the demo SLO's verdict and its HTML report (or all of it as JSON).

use xcbench::{demo, output};

use super::{shutdown_signal, CommandError, Outcome};
use crate::cli::DemoArgs;

pub(crate) async fn run(args: DemoArgs) -> Result<Outcome, CommandError> {
    let config = demo::DemoConfig {
        duration: args.duration,
        interval: args.interval,
        payload_size: usize::from(args.payload_size),
        timestamps: args.timestamps,
        progress: !args.json,
    };
    let progress = |p: demo::Progress<'_>| println!("{}", output::demo::progress(&p));
    let report = demo::run(config, shutdown_signal(), progress)
        .await
        .map_err(CommandError::failed)?;
    if args.json {
        let text = serde_json::to_string_pretty(&report.rows).expect("rows serialize");
        println!("{text}");
        return Ok(Outcome::OK);
    }
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
    Ok(Outcome::OK)
}
