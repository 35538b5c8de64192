//! How late the probe timer fires, against tokio's own timer: 2,000 deadlines 1.3 ms apart
//! on each, lateness percentiles in microseconds. A benchmark, not a test (the machine's
//! load decides the figures).
//!
//!   cargo run --release -p xcbench-agent --example timer_lateness

use xcbench_agent::net::clock::now_mono_ns;
use xcbench_agent::net::timer::DeadlineTimer;

const ROUNDS: usize = 2_000;
const GAP_NS: u64 = 1_300_000;

fn percentiles(mut late: Vec<u64>) -> String {
    late.sort_unstable();
    let at = |q: f64| late[((late.len() - 1) as f64 * q) as usize] as f64 / 1e3;
    format!(
        "p50 {:>7.1} us  p99 {:>7.1} us  max {:>8.1} us",
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let timer = DeadlineTimer::new()?;
    let mut late = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let deadline = now_mono_ns() + GAP_NS;
        timer.arm(Some(deadline))?;
        timer.wait().await?;
        late.push(now_mono_ns().saturating_sub(deadline));
    }
    println!("timerfd (CLOCK_MONOTONIC): {}", percentiles(late));
    let mut late = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let deadline = now_mono_ns() + GAP_NS;
        let sleep = std::time::Duration::from_nanos(GAP_NS);
        tokio::time::sleep(sleep).await;
        late.push(now_mono_ns().saturating_sub(deadline));
    }
    println!("tokio::time::sleep:        {}", percentiles(late));
    Ok(())
}
