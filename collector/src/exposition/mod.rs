//! `/metrics`: every family built from the store at scrape time (nothing cached between
//! scrapes), written straight into the answer in the format the scraper asked for.
//!
//! Series labels: `src_agent`, `src_cloud`, `src_region` (the prober), `dst_agent`,
//! `dst_cloud`, `dst_region` (the reflector), `protocol`, `kind`, and `load` (`idle`, or
//! `bench` for outcomes recorded while a throughput test between the pair ran). "forward" is
//! src -> dst. Scheduled throughput tests (`xcbench_bench_*`) carry the pair, `protocol` and
//! `direction` (forward: the testing agent sent).
//!
//! - this file: [`render`], and the `Families` builder every area pushes through.
//! - `options`: [`Options`] (what is served: `exposition`, `window_summaries`, native
//!   histograms), [`Format`] (text or protobuf, by `Accept`) and [`Areas`] (`collect[]`).
//! - `remote`: the same families as remote-write samples of one snapshot, or as stale markers.
//! - `text` and `proto`: the two wire formats (and remote write's `WriteRequest`), written
//!   without building a model first.
//! - `tests`: the areas against a fixed store, its golden answer and the peers' decoders.
//! - `catalog` (`xcbench_snapshot::metrics`): every family's name, type, unit and help, in
//!   one table shared with the SLO rules, the gate and the dashboards.
//! - one file per area, as node_exporter has one per collector: `series` (probe series:
//!   counters, latency histograms and window summaries, jitter, clock, TCP_INFO, quinn path),
//!   `throughput` (scheduled tests, `xcbench_bench_*`), `agents` (reflector and sender
//!   counters, last report), `slo` (exact within-threshold counters and the SLO file's
//!   verdicts), `collector` (the collector's own ingest and series).

mod agents;
mod collector;
mod options;
mod proto;
mod remote;
mod series;
mod slo;
mod text;
mod throughput;

use std::collections::BTreeMap;
use std::ops::Bound;

use xcbench_snapshot::{Identity, Metric, Protocol};

use crate::store::{SeriesKey, Store};
use catalog::{Kind, MetricDef};
pub use xcbench_snapshot::metrics as catalog;

pub use options::{Areas, Exposition, Format, Native, Options};
use remote::Remote;
pub use remote::{remote_write, remote_write_stale, Requests, STALE_NAN};
pub use series::{LATENCY_BUCKETS, WINDOW_QUANTILES};
use text::Value;

/// Reads the clock for window expiry; a parameter so tests can pin it.
pub type Clock = std::sync::Arc<dyn Fn() -> u64 + Send + Sync>;

/// Every family of `areas` for the store's current content, sorted by name, in `format`: a list of
/// pieces to send one after another (so the answer is never copied whole once more).
pub fn render(store: &Store, options: &Options, format: Format, areas: Areas) -> Vec<Vec<u8>> {
    let mut f = Families::new(store, options, format);
    push_areas(&mut f, store, areas);
    f.finish(&mut Vec::new())
}

/// Probe series a text answer's histogram or summary family is written at a time
/// ([`Part`]): about 32 MB of one-way delay buckets (two directions of 34 lines, ~230 bytes
/// each, per series).
pub const SERIES_PER_PART: usize = 2048;

/// A group of families of a scrape's answer, written in one or more parts, each under its
/// own hold of the store ([`render_part`]): the answer sent part by part is [`render`]'s,
/// and its memory is its largest part's, not its whole size (4.2 GB of text at 100,000
/// series).
///
/// A protobuf family is one message whose length comes first: a group is one part. In text,
/// a group of one family (a latency histogram or summary, 30-70 lines per series) is
/// written some probe series at a time, its header once; a group of several families (a
/// line or two per series each) is one part, since a family's lines must stay together
/// and a pass per family over every series costs more than the smaller parts save
/// (measured: a 100,000-series text scrape 22.3 s median instead of 15.3 s).
#[derive(Debug, Clone)]
pub struct Part {
    format: Format,
    families: Vec<&'static str>,
    /// Probe series per part (a text group of one family), or every series at once.
    per_part: Option<usize>,
    /// The last probe series written, once a part is.
    after: Option<SeriesKey>,
    /// Families whose header is written.
    headed: Vec<&'static str>,
    done: bool,
}

impl Part {
    /// Whether every part is written.
    pub fn done(&self) -> bool {
        self.done
    }

    /// The families this group writes.
    pub fn families(&self) -> &[&'static str] {
        &self.families
    }
}

/// The groups of a scrape's answer in `format`, in order ([`family_groups`]), at most
/// `series_per_part` probe series per part of a text group of one family
/// ([`SERIES_PER_PART`]).
pub fn parts(format: Format, series_per_part: usize) -> Vec<Part> {
    let text = format == Format::Text;
    family_groups()
        .into_iter()
        .map(|families| Part {
            format,
            per_part: (text && families.len() == 1).then_some(series_per_part.max(1)),
            families,
            after: None,
            headed: Vec::new(),
            done: false,
        })
        .collect()
}

/// The next part of `part`'s group: its families over the next probe series (and, in the
/// first part, over everything else), after which `part` says where it stands.
pub fn render_part(
    store: &Store,
    options: &Options,
    areas: Areas,
    part: &mut Part,
) -> Vec<Vec<u8>> {
    let lower = part
        .after
        .as_ref()
        .map_or(Bound::Unbounded, Bound::Excluded);
    // The last series of this part, if more may follow it.
    let last = part.per_part.and_then(|n| {
        store
            .series_range((lower, Bound::Unbounded))
            .nth(n - 1)
            .map(|(k, _)| k.clone())
    });
    let pieces = {
        let mut f = Families::new(store, options, part.format);
        f.only = Some(&part.families);
        f.series = (
            lower,
            last.as_ref().map_or(Bound::Unbounded, Bound::Included),
        );
        f.first = part.after.is_none();
        push_areas(&mut f, store, areas);
        f.finish(&mut part.headed)
    };
    match last {
        Some(k) => part.after = Some(k),
        None => part.done = true,
    }
    pieces
}

/// Every family an answer can hold, in the order [`render`] writes them (by name), in
/// groups: a histogram or summary family (a few dozen samples per series) alone, the
/// families between them (a sample or two per series each) together. Each group is a
/// pass over the store: about ten, where a pass per family took twice as long in
/// protobuf.
pub fn family_groups() -> Vec<Vec<&'static str>> {
    let mut defs: Vec<&'static MetricDef> = catalog::ALL.to_vec();
    defs.sort_unstable_by_key(|d| d.name());
    defs.dedup_by_key(|d| d.name());
    let mut groups: Vec<Vec<&'static str>> = Vec::new();
    let mut small = Vec::new();
    for d in defs {
        if matches!(d.kind(), Kind::Histogram | Kind::Summary) {
            if !small.is_empty() {
                groups.push(std::mem::take(&mut small));
            }
            groups.push(vec![d.name()]);
        } else {
            small.push(d.name());
        }
    }
    if !small.is_empty() {
        groups.push(small);
    }
    groups
}

/// Pushes the families of `areas`: the probe series within `f.series`, the rest only in a
/// first part.
fn push_areas(f: &mut Families, store: &Store, areas: Areas) {
    if areas.series {
        series::push_families(f, store);
    }
    if areas.throughput && f.first {
        throughput::push_families(f, store);
    }
    if areas.agents && f.first {
        agents::push_families(f, store);
    }
    if areas.slo {
        slo::push_families(f, store);
    }
    if areas.collector && f.first {
        collector::push_families(f, store);
    }
}

/// [`render`] of every area in the text format, as one string.
pub fn render_text(store: &Store, options: &Options) -> String {
    String::from_utf8(render(store, options, Format::Text, Areas::ALL).concat())
        .expect("text format is UTF-8")
}

/// A metric's labels: borrowed name/value pairs, a base and a few more, so a series' labels
/// are never copied per sample.
#[derive(Debug, Clone, Copy)]
pub(super) struct Labels<'a> {
    base: &'a [(&'a str, &'a str)],
    extra: &'a [(&'a str, &'a str)],
}

impl<'a> Labels<'a> {
    pub(super) fn new(base: &'a [(&'a str, &'a str)]) -> Labels<'a> {
        Labels { base, extra: &[] }
    }

    /// These labels, then `extra` (once: a second call replaces the first's).
    pub(super) fn and(self, extra: &'a [(&'a str, &'a str)]) -> Labels<'a> {
        debug_assert!(self.extra.is_empty(), "labels extended twice");
        Labels { extra, ..self }
    }

    pub(super) fn iter(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.base.iter().chain(self.extra).copied()
    }
}

/// A classic histogram: counts per bucket of the store's bounds (not cumulative, the last
/// one above every bound), the count and sum in nanoseconds.
pub(super) struct Classic<'a> {
    pub(super) buckets: &'a [u64],
    pub(super) count: u64,
    pub(super) sum_ns: u64,
    /// Native bucket index -> count, at the store's schema (empty without natives).
    pub(super) native: Option<&'a BTreeMap<i32, u64>>,
}

/// Families being written for one scrape, by name. Every push names a catalog entry, which
/// gives the family its name, type and help.
struct Families<'o> {
    format: Format,
    options: &'o Options,
    window_seconds: u64,
    /// Each bucket bound in seconds, and as its `le` label.
    bounds: Vec<(f64, String)>,
    /// Per family, its samples: text lines, or encoded `Metric` messages.
    by_name: BTreeMap<&'static str, (&'static MetricDef, Pieces)>,
    /// Window quantiles, and each as its `quantile` label.
    quantiles: Vec<(f64, String)>,
    /// Writing remote-write samples instead of a scrape's answer (see [`remote_write`]).
    remote: Option<Remote>,
    /// Writing only these families ([`render_part`]); every other push is skipped.
    only: Option<&'o [&'static str]>,
    /// The probe series written ([`render_part`]: some of them).
    series: (Bound<&'o SeriesKey>, Bound<&'o SeriesKey>),
    /// Whether this is a group's first part, the one that writes what is not per series.
    first: bool,
    scratch: Vec<u8>,
    value: Vec<u8>,
}

impl<'o> Families<'o> {
    fn new(store: &Store, options: &'o Options, format: Format) -> Families<'o> {
        Families {
            format,
            options,
            window_seconds: store.window_ns() / 1_000_000_000,
            bounds: store
                .bucket_bounds()
                .ns()
                .iter()
                .map(|b| (seconds(*b), text::float_text(seconds(*b))))
                .collect(),
            by_name: BTreeMap::new(),
            quantiles: WINDOW_QUANTILES
                .iter()
                .map(|q| (*q, text::float_text(*q)))
                .collect(),
            remote: None,
            only: None,
            series: (Bound::Unbounded, Bound::Unbounded),
            first: true,
            scratch: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Whether `def`'s samples are written ([`render_part`] writes some families).
    fn wants(&self, def: &MetricDef) -> bool {
        self.only.is_none_or(|names| names.contains(&def.name()))
    }

    /// Whether a metric's window summary is served.
    fn summarized(&self, metric: Metric) -> bool {
        // A window summary is a figure of the scrape's moment, not of a measured interval.
        self.remote.is_none()
            && (self.options.exposition == Exposition::Full
                || self.options.window_summaries.contains(&metric))
    }

    /// The family's samples so far, checking (in debug builds) that `def` holds `kind`: a
    /// catalog entry of another type would be served with a TYPE line that contradicts its
    /// samples.
    fn family(&mut self, def: &'static MetricDef, kind: Kind) -> &mut Vec<u8> {
        debug_assert_eq!(def.kind(), kind, "{} pushed as a {kind:?}", def.name());
        self.by_name
            .entry(def.name())
            .or_insert((def, Pieces::default()))
            .1
            .buf()
    }

    fn counter(&mut self, def: &'static MetricDef, labels: Labels<'_>, value: u64) {
        self.single(def, Kind::Counter, labels, None, Value::Int(value));
    }

    fn counter_f64(&mut self, def: &'static MetricDef, labels: Labels<'_>, value: f64) {
        self.single(def, Kind::Counter, labels, None, Value::Float(value));
    }

    fn gauge(&mut self, def: &'static MetricDef, labels: Labels<'_>, value: f64) {
        self.single(def, Kind::Gauge, labels, None, Value::Float(value));
    }

    /// A counter or gauge, with one more label if `extra`.
    fn single(
        &mut self,
        def: &'static MetricDef,
        kind: Kind,
        labels: Labels<'_>,
        extra: Option<(&str, &str)>,
        value: Value,
    ) {
        if self.remote.is_some() {
            self.remote_sample(def.name(), "", labels, extra, as_f64(value));
            return;
        }
        if !self.wants(def) {
            return;
        }
        let format = self.format;
        let (mut scratch, mut message) = (
            std::mem::take(&mut self.scratch),
            std::mem::take(&mut self.value),
        );
        let out = self.family(def, kind);
        match format {
            Format::Text => text::sample(out, def.name(), "", labels, extra, value),
            Format::Protobuf => {
                message.clear();
                proto::single(&mut message, as_f64(value));
                let field = if kind == Kind::Counter { 3 } else { 2 };
                proto::metric(out, &mut scratch, labels, extra, field, &message);
            }
        }
        (self.scratch, self.value) = (scratch, message);
    }

    fn histogram(&mut self, def: &'static MetricDef, labels: Labels<'_>, h: &Classic<'_>) {
        if self.remote.is_some() {
            self.remote_histogram(def.name(), labels, h);
            return;
        }
        if !self.wants(def) {
            return;
        }
        let format = self.format;
        let bounds = std::mem::take(&mut self.bounds);
        let (mut scratch, mut message) = (
            std::mem::take(&mut self.scratch),
            std::mem::take(&mut self.value),
        );
        let native = self.options.native;
        let out = self.family(def, Kind::Histogram);
        let name = def.name();
        let sum = seconds(h.sum_ns);
        match format {
            Format::Text => text::histogram(out, name, labels, &bounds, h.buckets, h.count, sum),
            Format::Protobuf => {
                message.clear();
                let mut c = 0;
                let classic = !matches!(native, Native::Replace { .. });
                proto::classic_histogram(
                    &mut message,
                    h.count,
                    sum,
                    bounds
                        .iter()
                        .enumerate()
                        .map(|(i, (upper, _))| {
                            c += h.buckets.get(i).copied().unwrap_or(0);
                            (*upper, c)
                        })
                        .filter(|_| classic),
                );
                if let Some(schema) = native.schema() {
                    let empty = BTreeMap::new();
                    proto::native_histogram(&mut message, schema, h.native.unwrap_or(&empty));
                }
                proto::metric(out, &mut scratch, labels, None, 7, &message);
            }
        }
        self.bounds = bounds;
        (self.scratch, self.value) = (scratch, message);
    }

    /// A summary: a value in seconds per [`WINDOW_QUANTILES`] entry.
    fn summary(
        &mut self,
        def: &'static MetricDef,
        labels: Labels<'_>,
        values: &[f64],
        count: u64,
        sum: f64,
    ) {
        if !self.wants(def) {
            return;
        }
        let format = self.format;
        let quantiles = std::mem::take(&mut self.quantiles);
        let (mut scratch, mut message) = (
            std::mem::take(&mut self.scratch),
            std::mem::take(&mut self.value),
        );
        let out = self.family(def, Kind::Summary);
        let name = def.name();
        match format {
            Format::Text => {
                for ((_, q), v) in quantiles.iter().zip(values) {
                    text::sample(
                        out,
                        name,
                        "",
                        labels,
                        Some(("quantile", q)),
                        Value::Float(*v),
                    );
                }
                text::sample(out, name, "_sum", labels, None, Value::Float(sum));
                text::sample(out, name, "_count", labels, None, Value::Int(count));
            }
            Format::Protobuf => {
                message.clear();
                let q: Vec<(f64, f64)> = quantiles
                    .iter()
                    .zip(values)
                    .map(|((q, _), v)| (*q, *v))
                    .collect();
                proto::summary(&mut message, count, sum, &q);
                proto::metric(out, &mut scratch, labels, None, 4, &message);
            }
        }
        self.quantiles = quantiles;
        (self.scratch, self.value) = (scratch, message);
    }

    /// Each family, in name order, with its header unless `headed` names it (an earlier part
    /// of the family wrote it; the families headed now are added): the pieces of the answer.
    fn finish(self, headed: &mut Vec<&'static str>) -> Vec<Vec<u8>> {
        let mut pieces = Vec::with_capacity(2 * self.by_name.len());
        for (name, (def, body)) in self.by_name {
            if headed.contains(&name) {
                pieces.extend(body.into_vec());
                continue;
            }
            headed.push(name);
            let mut help = def.help(self.window_seconds);
            if let (Format::Protobuf, Some(schema), Kind::Histogram) =
                (self.format, self.options.native.schema(), def.kind())
            {
                help.to_mut().push_str(&format!(
                    " Native buckets: schema {schema}, a value within {:.2}% of its bucket's middle (after HdrHistogram's 0.1% or 512 ns).",
                    100.0 * Native::error_of(schema)
                ));
            }
            let kind = def.kind().as_str();
            let mut head = Vec::new();
            match self.format {
                Format::Text => text::header(&mut head, name, &help, kind),
                Format::Protobuf => {
                    let mut fields = Vec::new();
                    proto::header(&mut fields, name, &help, kind);
                    proto::varint(&mut head, (fields.len() + body.len()) as u64);
                    head.extend_from_slice(&fields);
                }
            }
            pieces.push(head);
            pieces.extend(body.into_vec());
        }
        pieces
    }
}

/// Bytes a piece of a family's samples grows to before the next begins.
const PIECE: usize = 256 * 1024;

/// A family's samples in pieces of about [`PIECE`] bytes: no buffer is ever copied to grow
/// past that, so a scrape's memory is its answer's size, not twice it.
#[derive(Default)]
struct Pieces {
    full: Vec<Vec<u8>>,
    current: Vec<u8>,
}

impl Pieces {
    /// Where the next metric goes (a whole metric per call: a piece may pass [`PIECE`] by one).
    fn buf(&mut self) -> &mut Vec<u8> {
        if self.current.len() >= PIECE {
            let next = Vec::with_capacity(PIECE + PIECE / 4);
            self.full.push(std::mem::replace(&mut self.current, next));
        }
        &mut self.current
    }

    fn len(&self) -> usize {
        self.full.iter().map(Vec::len).sum::<usize>() + self.current.len()
    }

    fn into_vec(mut self) -> Vec<Vec<u8>> {
        self.full.push(self.current);
        self.full
    }
}

fn as_f64(v: Value) -> f64 {
    match v {
        Value::Int(i) => i as f64,
        Value::Float(f) => f,
    }
}

/// Who measured whom, over what: the labels probe series and scheduled tests share.
fn pair_labels<'a>(
    source: &'a Identity,
    peer: &'a Identity,
    protocol: Protocol,
) -> Vec<(&'a str, &'a str)> {
    let mut v = Vec::with_capacity(11);
    v.extend([
        ("src_agent", source.id.as_str()),
        ("src_cloud", source.cloud.as_str()),
        ("src_region", source.region.as_str()),
        ("dst_agent", peer.id.as_str()),
        ("dst_cloud", peer.cloud.as_str()),
        ("dst_region", peer.region.as_str()),
        ("protocol", protocol.as_str()),
    ]);
    v
}

/// Prometheus' base unit for nanoseconds.
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

#[cfg(test)]
mod tests;
