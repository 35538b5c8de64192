//! The Prometheus protobuf exposition (`io.prometheus.client.MetricFamily`, varint-length
//! delimited), written straight from the store's numbers: the same samples as the text
//! format, labels once per metric instead of once per line, and room for native histograms;
//! and remote write 1.0's `TimeSeries` (a sample, or a native histogram).
//!
//! Only the wire format is written here (field numbers of `metrics.proto` and of prompb's
//! `types.proto`); which families and samples are served or written is the exposition's.

use std::collections::BTreeMap;

use super::Labels;

/// `MetricType` values.
pub(super) fn type_number(kind: &str) -> u64 {
    match kind {
        "counter" => 0,
        "gauge" => 1,
        "summary" => 2,
        "histogram" => 4,
        other => unreachable!("no metric type {other}"),
    }
}

/// A family's own fields (name, help, type), to come before its metrics.
pub(super) fn header(out: &mut Vec<u8>, name: &str, help: &str, kind: &str) {
    bytes_field(out, 1, name.as_bytes());
    bytes_field(out, 2, help.as_bytes());
    varint_field(out, 3, type_number(kind));
}

/// A metric (field 4 of its family) of labels and one value message: `value_field` is 2
/// (gauge), 3 (counter), 4 (summary) or 7 (histogram), `value` its encoded message.
pub(super) fn metric(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    labels: Labels<'_>,
    extra: Option<(&str, &str)>,
    value_field: u32,
    value: &[u8],
) {
    scratch.clear();
    for (n, v) in labels.iter().chain(extra) {
        let len = field_len(1, n.len()) + field_len(2, v.len());
        tag(scratch, 1, 2);
        varint(scratch, len as u64);
        bytes_field(scratch, 1, n.as_bytes());
        bytes_field(scratch, 2, v.as_bytes());
    }
    bytes_field(scratch, value_field, value);
    bytes_field(out, 4, scratch);
}

/// A remote-write `TimeSeries` (field 1 of a `WriteRequest`): `__name__` (the family's
/// name and suffix, written as one value), `labels` (already sorted by name; every label we
/// serve starts with a lowercase letter, so `__name__` sorts first) and one
/// `Sample { value = 1, timestamp = 2 }`.
pub(super) fn time_series(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    name: [&str; 2],
    labels: &[(&str, &str)],
    value: f64,
    timestamp_ms: i64,
) {
    series_labels(scratch, name, labels);
    // Sample: a double (1 + 8 bytes) and a varint timestamp.
    let ts = timestamp_ms as u64;
    tag(scratch, 2, 2);
    varint(scratch, (9 + 1 + varint_len(ts)) as u64);
    double_field(scratch, 1, value);
    varint_field(scratch, 2, ts);
    bytes_field(out, 1, scratch);
}

/// A remote-write `TimeSeries` of one native histogram (`histograms = 4`, remote write 1.0's
/// `prompb.Histogram`): the integer count, the sum in seconds, `schema`, an empty zero bucket
/// and the positive buckets as spans and deltas, at `timestamp_ms`. (Such a series ends with
/// a float stale marker, as a scrape ends it: Prometheus turns it into the histogram's.)
pub(super) fn time_series_histogram(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    name: &str,
    labels: &[(&str, &str)],
    (count, sum): (u64, f64),
    (schema, buckets): (i8, &BTreeMap<i32, u64>),
    timestamp_ms: i64,
) {
    series_labels(scratch, [name, ""], labels);
    let mut h = Vec::with_capacity(32 + 3 * buckets.len());
    varint_field(&mut h, 1, count);
    double_field(&mut h, 3, sum);
    sint_field(&mut h, 4, i64::from(schema));
    double_field(&mut h, 5, ZERO_THRESHOLD);
    varint_field(&mut h, 6, 0);
    buckets_as_spans(&mut h, [11, 12], buckets);
    varint_field(&mut h, 15, timestamp_ms as u64);
    bytes_field(scratch, 4, &h);
    bytes_field(out, 1, scratch);
}

/// `scratch` cleared, then a `TimeSeries`' labels: `__name__` first, then `labels`.
fn series_labels(scratch: &mut Vec<u8>, [name, suffix]: [&str; 2], labels: &[(&str, &str)]) {
    debug_assert!(labels
        .iter()
        .all(|(n, _)| n.as_bytes()[0].is_ascii_lowercase()));
    scratch.clear();
    let value_len = name.len() + suffix.len();
    tag(scratch, 1, 2);
    varint(scratch, (field_len(1, 8) + field_len(2, value_len)) as u64);
    bytes_field(scratch, 1, b"__name__");
    tag(scratch, 2, 2);
    varint(scratch, value_len as u64);
    scratch.extend_from_slice(name.as_bytes());
    scratch.extend_from_slice(suffix.as_bytes());
    for (n, v) in labels {
        let len = field_len(1, n.len()) + field_len(2, v.len());
        tag(scratch, 1, 2);
        varint(scratch, len as u64);
        bytes_field(scratch, 1, n.as_bytes());
        bytes_field(scratch, 2, v.as_bytes());
    }
}

/// A counter's or gauge's message: `value = 1`.
pub(super) fn single(out: &mut Vec<u8>, value: f64) {
    double_field(out, 1, value);
}

/// A summary's message.
pub(super) fn summary(out: &mut Vec<u8>, count: u64, sum: f64, quantiles: &[(f64, f64)]) {
    varint_field(out, 1, count);
    double_field(out, 2, sum);
    for (q, v) in quantiles {
        tag(out, 3, 2);
        varint(out, 18);
        double_field(out, 1, *q);
        double_field(out, 2, *v);
    }
}

/// A classic histogram's message: cumulative counts at upper bounds in seconds (no +Inf
/// bucket: the count is that).
pub(super) fn classic_histogram(
    out: &mut Vec<u8>,
    count: u64,
    sum: f64,
    buckets: impl Iterator<Item = (f64, u64)>,
) {
    varint_field(out, 1, count);
    double_field(out, 2, sum);
    let mut bucket = Vec::with_capacity(20);
    for (upper, cumulative) in buckets {
        bucket.clear();
        varint_field(&mut bucket, 1, cumulative);
        double_field(&mut bucket, 2, upper);
        bytes_field(out, 3, &bucket);
    }
}

/// A native histogram's fields, appended to a histogram message: `schema`, a zero bucket
/// that holds nothing (latencies are positive), and the positive buckets as spans of
/// neighbouring indexes and count deltas. No buckets: one empty span, so a reader still sees
/// a native histogram.
pub(super) fn native_histogram(out: &mut Vec<u8>, schema: i8, buckets: &BTreeMap<i32, u64>) {
    sint_field(out, 5, i64::from(schema));
    double_field(out, 6, ZERO_THRESHOLD);
    varint_field(out, 7, 0);
    buckets_as_spans(out, [12, 13], buckets);
}

/// Prometheus' default zero threshold (2^-128).
const ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// Native buckets as `BucketSpan { sint32 offset = 1; uint32 length = 2 }` messages (field
/// `span_field`) of neighbouring indexes, then each count as the difference from the one
/// before (`sint64`, field `delta_field`): the same in the exposition's `Histogram` and in
/// remote write's, under different field numbers. No buckets: one empty span.
fn buckets_as_spans(
    out: &mut Vec<u8>,
    [span_field, delta_field]: [u32; 2],
    buckets: &BTreeMap<i32, u64>,
) {
    let mut span = Vec::with_capacity(8);
    let mut spans: Vec<(i32, u32)> = Vec::new();
    let mut last: Option<i32> = None;
    for &i in buckets.keys() {
        match (last, spans.last_mut()) {
            (Some(l), Some(s)) if i == l + 1 => s.1 += 1,
            (Some(l), _) => spans.push((i - l - 1, 1)),
            (None, _) => spans.push((i, 1)),
        }
        last = Some(i);
    }
    if spans.is_empty() {
        spans.push((0, 0));
    }
    for (offset, length) in spans {
        span.clear();
        sint_field(&mut span, 1, i64::from(offset));
        varint_field(&mut span, 2, u64::from(length));
        bytes_field(out, span_field, &span);
    }
    let mut previous = 0i64;
    for &c in buckets.values() {
        sint_field(out, delta_field, c as i64 - previous);
        previous = c as i64;
    }
}

/// A signed field in zigzag (`sint32`, `sint64`).
fn sint_field(out: &mut Vec<u8>, field: u32, v: i64) {
    tag(out, field, 0);
    varint(out, zigzag(v));
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

pub(super) use xcbench_snapshot::varint::put as varint;
use xcbench_snapshot::varint::{len as varint_len, zigzag};

/// Bytes a length-delimited field of `len` bytes takes (fields below 16: a one-byte tag).
fn field_len(field: u32, len: usize) -> usize {
    debug_assert!(field < 16);
    1 + varint_len(len as u64) + len
}

pub(super) fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, 0);
    varint(out, v);
}

pub(super) fn double_field(out: &mut Vec<u8>, field: u32, v: f64) {
    tag(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

pub(super) fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}
