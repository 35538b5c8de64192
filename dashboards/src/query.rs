//! PromQL the descriptions share: label selections made of the dashboards' variables, and
//! the few computations (quantiles and means of latency histograms, ratios of counter
//! increases) written once so every panel computes them the same way.

/// The window of every rate: Grafana's `$__rate_interval` (at least four scrape intervals,
/// from the datasource's `timeInterval`).
pub const RATE: &str = "$__rate_interval";
/// The whole selected time range (tables and stats "over the range").
pub const RANGE: &str = "$__range";

/// Matchers joined into a selector body.
pub fn sel(matchers: &[&str]) -> String {
    matchers
        .iter()
        .filter(|m| !m.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

/// `label=~"$var"` for each of a variable chain (a variable named like its label).
pub fn vars(labels: &[&str]) -> String {
    labels
        .iter()
        .map(|l| format!("{l}=~\"${l}\""))
        .collect::<Vec<_>>()
        .join(",")
}

/// The pair the pair dashboard shows: both ends' cloud, region and agent variables.
pub fn pair() -> String {
    vars(&[
        "src_cloud",
        "src_region",
        "src_agent",
        "dst_cloud",
        "dst_region",
        "dst_agent",
    ])
}

/// The pair plus the probe variables (protocol, kind, load).
pub fn probes() -> String {
    sel(&[&pair(), &vars(&["protocol", "kind", "load"])])
}

/// `histogram_quantile` of a latency histogram summed by `by`: over its classic buckets
/// (`<metric>_bucket`: a scrape of the collector, or its classic remote write), `or` over
/// its native histograms (`<metric>`: the collector's remote write with `histograms =
/// "native"`). A store holds one form or the other; where it holds both for the same labels,
/// `or` keeps the classic answer.
pub fn quantile(q: &str, metric: &str, selector: &str, by: &[&str], window: &str) -> String {
    let mut classic = by.to_vec();
    classic.push("le");
    format!(
        "histogram_quantile({q}, sum by ({}) (rate({metric}_bucket{{{selector}}}[{window}])))\n  or histogram_quantile({q}, sum by ({}) (rate({metric}{{{selector}}}[{window}])))",
        classic.join(", "),
        by.join(", ")
    )
}

/// The mean of a latency histogram over `window`, summed by `by`: the exact `_sum` over
/// `_count`, `or` the same read from native histograms ([`quantile`] says why both); no
/// mean where nothing was counted.
pub fn mean(metric: &str, selector: &str, by: &[&str], window: &str) -> String {
    let by = by.join(", ");
    format!(
        "sum by ({by}) (rate({metric}_sum{{{selector}}}[{window}]))\n  / (sum by ({by}) (rate({metric}_count{{{selector}}}[{window}])) > 0)\n  or histogram_sum(sum by ({by}) (rate({metric}{{{selector}}}[{window}])))\n  / (histogram_count(sum by ({by}) (rate({metric}{{{selector}}}[{window}]))) > 0)"
    )
}

/// The ratio of two counters' increases over `window`, summed by `by`; no ratio where the
/// denominator did not increase (never a division by zero, never a lifetime counter).
pub fn ratio(num: &str, den: &str, by: &[&str], window: &str) -> String {
    let by = by.join(", ");
    format!(
        "sum by ({by}) (increase({num}[{window}]))\n  / (sum by ({by}) (increase({den}[{window}])) > 0)"
    )
}

/// Probes lost over probes resolved (received + lost) in `window`, summed by `by`: the ratio
/// the gate and the SLO rules judge (probes still out at the window's end are in neither).
pub fn loss(selector: &str, by: &[&str], window: &str) -> String {
    let by = by.join(", ");
    format!(
        "sum by ({by}) (increase(xcbench_probes_lost_total{{{selector}}}[{window}]))\n  / (sum by ({by}) (increase(xcbench_probes_lost_total{{{selector}}}[{window}]) + increase(xcbench_probes_received_total{{{selector}}}[{window}])) > 0)"
    )
}

/// A counter's per-second rate over `$__rate_interval`, summed by `by`.
pub fn per_second(counter: &str, by: &[&str]) -> String {
    format!("sum by ({}) (rate({counter}[{RATE}]))", by.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_and_ratio_read_as_promql() {
        assert_eq!(
            quantile("0.99", "xcbench_rtt_seconds", "a=\"b\"", &["protocol"], RATE),
            "histogram_quantile(0.99, sum by (protocol, le) (rate(xcbench_rtt_seconds_bucket{a=\"b\"}[$__rate_interval])))\n  or histogram_quantile(0.99, sum by (protocol) (rate(xcbench_rtt_seconds{a=\"b\"}[$__rate_interval])))"
        );
        assert_eq!(
            mean("xcbench_rtt_seconds", "a=\"b\"", &["kind"], RATE),
            "sum by (kind) (rate(xcbench_rtt_seconds_sum{a=\"b\"}[$__rate_interval]))\n  / (sum by (kind) (rate(xcbench_rtt_seconds_count{a=\"b\"}[$__rate_interval])) > 0)\n  or histogram_sum(sum by (kind) (rate(xcbench_rtt_seconds{a=\"b\"}[$__rate_interval])))\n  / (histogram_count(sum by (kind) (rate(xcbench_rtt_seconds{a=\"b\"}[$__rate_interval]))) > 0)"
        );
        assert_eq!(
            ratio("x_total{a=\"1\"}", "y_total", &["p"], RANGE),
            "sum by (p) (increase(x_total{a=\"1\"}[$__range]))\n  / (sum by (p) (increase(y_total[$__range])) > 0)"
        );
        assert_eq!(sel(&["a=\"1\"", "", "b=\"2\""]), "a=\"1\",b=\"2\"");
        assert_eq!(vars(&["kind"]), "kind=~\"$kind\"");
    }
}
