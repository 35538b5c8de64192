//! `/metrics` as the tests read it: the Prometheus text exposition parsed into samples, the
//! check of one direction's probe counters against the peer's reflector, and how far a
//! native histogram's quantile may lie from the collector's HdrHistogram one.

use std::collections::BTreeMap;

/// Sample lines of a Prometheus text exposition: `name{labels}` -> value.
pub(crate) fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// The value of the first sample whose key starts with `name{` and contains every fragment.
pub(crate) fn sample(
    metrics: &BTreeMap<String, f64>,
    name: &str,
    fragments: &[&str],
) -> Option<f64> {
    metrics
        .iter()
        .find(|(k, _)| {
            (k.starts_with(&format!("{name}{{")) || k.as_str() == name)
                && fragments.iter().all(|f| k.contains(f))
        })
        .map(|(_, v)| *v)
}

/// Checks one direction's counters against the peer reflector's own count (a different
/// process): every probe settled, direction split consistent, and no more than
/// `max_startup_loss` probes lost (those sent before the peer's reflector was listening).
pub(crate) fn check_direction(
    m: &BTreeMap<String, f64>,
    src: &str,
    dst: &str,
    min_sent: f64,
    max_startup_loss: f64,
) {
    check_direction_with(m, src, dst, min_sent, max_startup_loss, 0.0);
}

/// As [`check_direction`], when the test itself had `test_packets` answered by `dst`.
pub(crate) fn check_direction_with(
    m: &BTreeMap<String, f64>,
    src: &str,
    dst: &str,
    min_sent: f64,
    max_startup_loss: f64,
    test_packets: f64,
) {
    let s = format!("src_agent=\"{src}\"");
    let d = format!("dst_agent=\"{dst}\"");
    let get = |name: &str, extra: &[&str]| {
        let mut sel = vec![s.as_str(), d.as_str()];
        sel.extend_from_slice(extra);
        sample(m, name, &sel).unwrap_or_else(|| panic!("{name} {sel:?} missing"))
    };
    let sent = get("xcbench_probes_sent_total", &[]);
    let received = get("xcbench_probes_received_total", &[]);
    let lost = get("xcbench_probes_lost_total", &[]);
    let forward = get(
        "xcbench_probes_lost_direction_total",
        &["direction=\"forward\""],
    );
    let reverse = get(
        "xcbench_probes_lost_direction_total",
        &["direction=\"reverse\""],
    );
    let reflected = sample(
        m,
        "xcbench_reflector_reflected_total",
        &[&format!("agent=\"{dst}\""), "protocol=\"udp\""],
    )
    .unwrap();
    assert!(sent >= min_sent, "{src}->{dst} sent {sent}");
    assert_eq!(
        received + lost,
        sent,
        "{src}->{dst}: every probe settles after the drain"
    );
    assert_eq!(
        forward + reverse,
        lost,
        "{src}->{dst}: every loss attributed; counters: {:#?}",
        m.iter()
            .filter(|(k, _)| k.contains("_total"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        reflected - test_packets,
        received + reverse,
        "{src}->{dst}: the peer reflected what came back or was lost back"
    );
    assert!(
        lost <= max_startup_loss && reverse == 0.0,
        "{src}->{dst}: lost {lost} (reverse {reverse})"
    );
    assert_eq!(get("xcbench_rtt_seconds_count", &[]), received);
}

/// Asserts that a quantile Prometheus read from a native histogram of schema 6 (1%) is the
/// collector's HdrHistogram quantile within one native bucket (1.09% wide) plus
/// HdrHistogram's own bucket (0.1%, or 512 ns below about 1 ms: loopback RTTs are a few
/// microseconds, where 512 ns is ~8%). Returns the relative difference.
pub(crate) fn assert_within_one_native_bucket(what: &str, native: f64, exact: f64) -> f64 {
    let off = (native - exact).abs() / exact;
    let hdr = (512e-9 / exact).max(0.001);
    assert!(
        off <= 0.0109 + hdr,
        "{what}: native {native}, HdrHistogram {exact}"
    );
    off
}
