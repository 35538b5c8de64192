//! `xcbench bench`: the test the flags ask for, against the peer named in agent.toml; live
//! lines, then the table or JSON.

use xcbench::output;
use xcbench_agent::net::throughput::{Client, ThroughputError};
use xcbench_agent::probe::throughput::Test;

use super::{CommandError, Outcome};
use crate::cli::BenchArgs;

pub(crate) async fn run(args: BenchArgs) -> Result<Outcome, CommandError> {
    let test = Test::try_from(args.spec()).map_err(CommandError::usage)?;
    let config = xcbench_agent::AgentConfig::load(&args.config).map_err(CommandError::usage)?;
    let file = args.config.display().to_string();
    let client = Client::from_config(&config, &file, &args.peer)
        .map_err(|e| CommandError::usage(anyhow::Error::new(e)))?;
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
        }
        Ok(report) => print!("{}", output::bench::render_table(&report)),
        Err(e @ ThroughputError::Setup(_)) => {
            return Err(CommandError::usage(anyhow::Error::new(e)))
        }
        Err(e) => return Err(CommandError::failed(e)),
    }
    Ok(Outcome::OK)
}
