//! Remote-write samples against the exposition's answer: the same lines of a snapshot,
//! native histograms for the classic series, stale markers; and the `WriteRequest` reader
//! they are read back with (written here from the proto's field numbers).

use super::*;
use crate::exposition::{remote_write, remote_write_stale, Requests};
use crate::remote_write::{Histograms, RemoteWriteConfig};

/// [`remote_write`] into new buffers: each request's samples and body.
fn written(
    store: &Store,
    options: &Options,
    snapshot: &xcbench_snapshot::Snapshot,
    config: &RemoteWriteConfig,
) -> Vec<(usize, Vec<u8>)> {
    let mut requests = Requests::default();
    remote_write(store, options, snapshot, config, &mut requests);
    requests.iter().map(|(n, b)| (n, b.to_vec())).collect()
}

/// [`remote_write_stale`] into new buffers.
fn write_stale(
    store: &Store,
    options: &Options,
    gone: &[xcbench_snapshot::AgentId],
    now_unix_ns: u64,
    config: &RemoteWriteConfig,
) -> Vec<(usize, Vec<u8>)> {
    let mut requests = Requests::default();
    remote_write_stale(store, options, gone, now_unix_ns, config, &mut requests);
    requests.iter().map(|(n, b)| (n, b.to_vec())).collect()
}

/// A protobuf reader just big enough for a `WriteRequest`: (labels, value, timestamp)
/// per `TimeSeries`.
type Labeled = (Vec<(String, String)>, f64, i64);

fn read_write_request(b: &[u8]) -> Vec<Labeled> {
    let (samples, histograms) = read_write_request_with_histograms(b);
    assert!(
        histograms.is_empty(),
        "native histograms in a classic write"
    );
    samples
}

/// A remote-write native histogram as read back: labels, count, sum, schema, bucket index
/// -> count, timestamp.
type NativeRead = (
    Vec<(String, String)>,
    u64,
    f64,
    i64,
    BTreeMap<i64, u64>,
    i64,
);

fn read_write_request_with_histograms(mut b: &[u8]) -> (Vec<Labeled>, Vec<NativeRead>) {
    fn field(b: &mut &[u8]) -> (u64, u64, Vec<u8>) {
        let (key, n) = read_varint(b);
        *b = &b[n..];
        match key & 7 {
            0 => {
                let (v, n) = read_varint(b);
                *b = &b[n..];
                (key >> 3, v, vec![])
            }
            1 => {
                let v = u64::from_le_bytes(b[..8].try_into().unwrap());
                *b = &b[8..];
                (key >> 3, v, vec![])
            }
            2 => {
                let (len, n) = read_varint(b);
                let body = b[n..n + len as usize].to_vec();
                *b = &b[n + len as usize..];
                (key >> 3, 0, body)
            }
            w => panic!("wire type {w}"),
        }
    }
    fn unzigzag(v: u64) -> i64 {
        ((v >> 1) as i64) ^ -((v & 1) as i64)
    }
    let (mut out, mut natives) = (Vec::new(), Vec::new());
    while !b.is_empty() {
        let (f, _, ts) = field(&mut b);
        assert_eq!(f, 1, "WriteRequest holds only timeseries");
        let mut ts = &ts[..];
        let (mut labels, mut samples) = (Vec::new(), Vec::new());
        let mut histograms = Vec::new();
        while !ts.is_empty() {
            let (f, _, body) = field(&mut ts);
            let mut body = &body[..];
            if f == 4 {
                // prompb.Histogram: count_int 1, sum 3, schema 4 (sint32), zero_threshold 5,
                // zero_count_int 6, positive_spans 11, positive_deltas 12, timestamp 15.
                let (mut count, mut sum, mut schema, mut at) = (0, 0.0, 0, 0);
                let (mut spans, mut deltas) = (Vec::new(), Vec::new());
                while !body.is_empty() {
                    match field(&mut body) {
                        (1, v, _) => count = v,
                        (3, bits, _) => sum = f64::from_bits(bits),
                        (4, v, _) => schema = unzigzag(v),
                        (5, _, _) => {}
                        (6, v, _) => assert_eq!(v, 0, "nothing in the zero bucket"),
                        (11, _, span) => {
                            let (mut offset, mut length) = (0, 0);
                            let mut span = &span[..];
                            while !span.is_empty() {
                                match field(&mut span) {
                                    (1, v, _) => offset = unzigzag(v),
                                    (2, v, _) => length = v,
                                    other => panic!("unexpected {other:?} in a span"),
                                }
                            }
                            spans.push((offset, length));
                        }
                        (12, v, _) => deltas.push(unzigzag(v)),
                        (15, v, _) => at = v as i64,
                        other => panic!("unexpected {other:?} in a histogram"),
                    }
                }
                // The first span starts at its offset; each later one that many empty
                // buckets after the one before ends.
                let mut buckets = BTreeMap::new();
                let (mut next, mut value, mut d) = (0i64, 0i64, deltas.iter());
                for (offset, length) in spans {
                    next += offset;
                    for _ in 0..length {
                        value += d.next().expect("a delta per bucket");
                        buckets.insert(next, value as u64);
                        next += 1;
                    }
                }
                assert!(d.next().is_none(), "a delta per bucket, no more");
                histograms.push((count, sum, schema, buckets, at));
                continue;
            }
            let mut parts = (String::new(), String::new(), 0.0, 0i64);
            while !body.is_empty() {
                match (f, field(&mut body)) {
                    (1, (1, _, n)) => parts.0 = String::from_utf8(n).unwrap(),
                    (1, (2, _, v)) => parts.1 = String::from_utf8(v).unwrap(),
                    (2, (1, bits, _)) => parts.2 = f64::from_bits(bits),
                    (2, (2, t, _)) => parts.3 = t as i64,
                    other => panic!("unexpected {other:?}"),
                }
            }
            match f {
                1 => labels.push((parts.0, parts.1)),
                2 => samples.push((parts.2, parts.3)),
                _ => panic!("field {f} in a TimeSeries"),
            }
        }
        match (samples.len(), histograms.len()) {
            (1, 0) => out.push((labels, samples[0].0, samples[0].1)),
            (0, 1) => {
                let (count, sum, schema, buckets, at) = histograms.pop().unwrap();
                natives.push((labels, count, sum, schema, buckets, at));
            }
            other => panic!("a TimeSeries of {other:?} samples and histograms"),
        }
    }
    (out, natives)
}

/// A writer's settings: `max` samples a request, classic or native histograms.
fn rw(max: usize, histograms: Histograms) -> RemoteWriteConfig {
    RemoteWriteConfig {
        max_samples_per_send: max,
        histograms,
        ..RemoteWriteConfig::new("http://receiver:9090/api/v1/write")
    }
}

/// Written as native histograms, each latency histogram is one sample instead of its
/// `_bucket`, `_sum` and `_count` series: its count and sum are those, its buckets (at the
/// store's schema) add up to its count, every other sample is the classic write's, and a
/// stale marker ends the histogram's own series.
#[test]
fn native_remote_write_is_one_histogram_for_the_classic_series() {
    let (store, snapshot) = fixed_native(Some(6));
    let options = Options::default();
    let classic = written(&store, &options, &snapshot, &rw(1_000, Histograms::Classic));
    let native = written(&store, &options, &snapshot, &rw(1_000, Histograms::Native));
    // Buffers filled again (the writer keeps them) give what new ones do.
    let mut reused = Requests::default();
    remote_write(
        &store,
        &options,
        &snapshot,
        &rw(1_000, Histograms::Native),
        &mut reused,
    );
    remote_write(
        &store,
        &options,
        &snapshot,
        &rw(7, Histograms::Classic),
        &mut reused,
    );
    let again: Vec<(usize, Vec<u8>)> = reused.iter().map(|(n, b)| (n, b.to_vec())).collect();
    assert!(again.len() > 2);
    assert_eq!(
        again,
        written(&store, &options, &snapshot, &rw(7, Histograms::Classic))
    );
    let read = |requests: &[(usize, Vec<u8>)]| {
        let (mut samples, mut histograms) = (Vec::new(), Vec::new());
        for (n, body) in requests {
            let (s, h) = read_write_request_with_histograms(body);
            assert_eq!(s.len() + h.len(), *n);
            samples.extend(s);
            histograms.extend(h);
        }
        (samples, histograms)
    };
    let (classic, none) = read(&classic);
    assert!(none.is_empty());
    let (floats, histograms) = read(&native);
    assert!(histograms.len() >= 5, "{} histograms", histograms.len());
    let name_of = |labels: &[(String, String)]| {
        labels
            .iter()
            .find(|(n, _)| n == "__name__")
            .unwrap()
            .1
            .clone()
    };
    let without = |labels: &[(String, String)], drop: &str| -> Vec<(String, String)> {
        labels
            .iter()
            .filter(|(n, _)| n != "__name__" && n != drop)
            .cloned()
            .collect()
    };
    let at = (snapshot.interval_end_unix_ns / 1_000_000) as i64;
    let mut covered = 0;
    for (labels, count, sum, schema, buckets, ts) in &histograms {
        let name = name_of(labels);
        let rest = without(labels, "");
        let classic_value = |suffix: &str| {
            classic
                .iter()
                .find(|(l, _, _)| name_of(l) == format!("{name}{suffix}") && without(l, "") == rest)
                .map(|s| s.1)
                .unwrap_or_else(|| panic!("no {name}{suffix} {rest:?} in the classic write"))
        };
        assert_eq!(*count as f64, classic_value("_count"), "{name}");
        assert_eq!(*sum, classic_value("_sum"), "{name}");
        assert_eq!((*schema, *ts), (6, at));
        assert_eq!(buckets.values().sum::<u64>(), *count, "{name} {buckets:?}");
        covered += classic
            .iter()
            .filter(|(l, _, _)| {
                let n = name_of(l);
                [
                    format!("{name}_bucket"),
                    format!("{name}_sum"),
                    format!("{name}_count"),
                ]
                .contains(&n)
                    && without(l, "le") == rest
            })
            .count();
    }
    // Every other classic sample is written as it was; the histograms stand for the rest.
    assert_eq!(floats.len() + covered, classic.len());
    for f in &floats {
        assert!(classic.contains(f), "{f:?} not in the classic write");
    }
    assert!(
        floats.len() + histograms.len() < classic.len() / 3,
        "{} floats and {} histograms for {} classic samples",
        floats.len(),
        histograms.len(),
        classic.len()
    );
    // Ended: a float stale marker on the histogram's own name.
    let gone = vec![snapshot.agent.id.clone()];
    let stale = write_stale(
        &store,
        &options,
        &gone,
        5 * S,
        &rw(1_000, Histograms::Native),
    );
    let (ended, none) = read(&stale);
    assert!(none.is_empty());
    for (labels, ..) in &histograms {
        assert!(
            ended
                .iter()
                .any(|(l, v, _)| l == labels && v.to_bits() == STALE_NAN),
            "{labels:?} not ended"
        );
    }
}

/// A snapshot's remote-write samples are the text answer's lines for its series, tests
/// and agent (all but the window summaries), each stamped with the interval's end, in
/// requests of at most the size asked, labels sorted by name.
#[test]
fn remote_write_samples_are_the_answers_lines_of_the_snapshot() {
    let (store, snapshot) = fixed();
    let text = render_text(&store, &Options::default());
    let requests = written(
        &store,
        &Options::default(),
        &snapshot,
        &rw(100, Histograms::Classic),
    );
    assert!(requests.len() > 3, "{} requests", requests.len());
    let mut seen = 0;
    for (n, body) in &requests {
        let samples = read_write_request(body);
        assert_eq!(samples.len(), *n);
        assert!(*n <= 100);
        for (labels, value, ts) in samples {
            assert_eq!(ts, (snapshot.interval_end_unix_ns / 1_000_000) as i64);
            let names: Vec<&str> = labels.iter().map(|(n, _)| n.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(names, sorted);
            let name = &labels.iter().find(|(n, _)| n == "__name__").unwrap().1;
            let rest: Vec<String> = labels
                .iter()
                .filter(|(n, _)| n != "__name__")
                .map(|(n, v)| format!("{n}=\"{v}\""))
                .collect();
            // The same sample among the text lines (label order aside).
            let found = text.lines().any(|l| {
                let Some((series, v)) = l.rsplit_once(' ') else {
                    return false;
                };
                let (n, ls) = series.split_once('{').unwrap_or((series, "}"));
                let mut ls: Vec<&str> = ls
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .collect();
                ls.sort_unstable();
                let mut want: Vec<&str> = rest.iter().map(String::as_str).collect();
                want.sort_unstable();
                n == name
                    && ls == want
                    && v.parse::<f64>()
                        .is_ok_and(|x| x == value || (x.is_nan() && value.is_nan()))
            });
            assert!(found, "{name} {rest:?} {value} not in the text answer");
            seen += 1;
        }
    }
    // Everything of the snapshot's series: the text lines that name its source agent
    // (as src_agent or agent), but for window summaries and the mesh's list.
    let own = text
        .lines()
        .filter(|l| {
            !l.starts_with('#')
                && !l.contains("_window_seconds")
                && !l.starts_with("xcbench_mesh_agent_info")
        })
        .filter(|l| {
            l.contains("src_agent=\"az-eastus-app1\"") || l.contains("agent=\"az-eastus-app1\"")
        })
        .count();
    assert_eq!(seen, own);
}

/// A peer that left the mesh: every written series it is part of (as prober or as
/// reflector) ends with a stale marker at the collector's time; its prober's own
/// families stay (that agent is still in the mesh).
#[test]
fn agents_that_left_the_mesh_end_their_series_with_stale_markers() {
    let (store, snapshot) = fixed();
    let options = Options::default();
    let gone: Vec<xcbench_snapshot::AgentId> = vec!["oci-ashburn-db1".parse().unwrap()];
    let stale = write_stale(
        &store,
        &options,
        &gone,
        1_700_000_123 * S,
        &rw(1_000, Histograms::Classic),
    );
    let live = written(&store, &options, &snapshot, &rw(1_000, Histograms::Classic));
    let names = |requests: &[(usize, Vec<u8>)]| {
        let mut v: Vec<String> = requests
            .iter()
            .flat_map(|(_, b)| read_write_request(b))
            .map(|(labels, _, _)| format!("{labels:?}"))
            .collect();
        v.sort();
        v
    };
    let ended: Vec<Labeled> = stale
        .iter()
        .flat_map(|(_, b)| read_write_request(b))
        .collect();
    assert!(!ended.is_empty());
    for (labels, value, ts) in &ended {
        assert_eq!(value.to_bits(), STALE_NAN, "{labels:?}");
        assert_eq!(*ts, 1_700_000_123_000);
    }
    let agent_families = |l: &String| l.contains("\"agent\"");
    let want: Vec<String> = names(&live)
        .into_iter()
        .filter(|l| !agent_families(l))
        .collect();
    assert_eq!(names(&stale), want);
    assert!(write_stale(&store, &options, &[], 0, &rw(1_000, Histograms::Classic)).is_empty());
}
