//! What one objective asks: which series ([`Select`]), what is measured ([`Indicator`]),
//! how it is judged ([`Comparison`]), over which time ([`Window`]), and how sure the answer
//! must be ([`Judging`]). Built only by the SLO file's parser, so every value is checked.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use xcbench_snapshot::history::Selection;
use xcbench_snapshot::{Load, Metric, ProbeKind, Protocol};

/// A direction along the path, seen from the prober (`src`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Prober to reflector (src to dst).
    Forward,
    /// Reflector to prober (dst to src).
    Reverse,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
        })
    }
}

/// What an objective measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "name", content = "direction")]
pub enum Indicator {
    /// Round trip without the reflector's dwell time (STAMP, or TCP/QUIC request/response).
    Rtt,
    /// One-way delay in one direction (STAMP; needs the clocks' error to be small).
    OneWayDelay(Direction),
    /// |IPDV| between consecutive probes in one direction (STAMP; clock offset cancels).
    Ipdv(Direction),
    /// TCP three-way handshake (connect probes).
    TcpConnect,
    /// A full QUIC handshake to the first response.
    QuicHandshake,
    /// A resumed QUIC connection (0-RTT) to the first response.
    QuicResume,
    /// Lost probes / resolved probes (sent and either answered or timed out); with a
    /// direction, the losses attributed to it (STAMP).
    Loss(Option<Direction>),
    /// Extra reply copies / replies.
    Duplicates,
    /// Replies overtaken by a later probe's reply / replies.
    Reorders,
    /// Replies after their probe's timeout / resolved probes.
    Late,
    /// A scheduled throughput test's goodput (bytes delivered to the receiving application
    /// over its counted time); with a direction, tests in that direction only.
    Goodput(Option<Direction>),
    /// The RTT quantile with a throughput test running minus the same quantile idle.
    RttIncreaseUnderLoad,
}

impl Indicator {
    /// Names in the SLO file.
    pub const NAMES: [&'static str; 12] = [
        "rtt",
        "one_way_delay",
        "ipdv",
        "tcp_connect",
        "quic_handshake",
        "quic_resume",
        "loss",
        "duplicates",
        "reorders",
        "late",
        "goodput",
        "rtt_increase_under_load",
    ];

    /// The latency distribution it reads, if any.
    pub fn metric(self) -> Option<Metric> {
        match self {
            Indicator::Rtt
            | Indicator::TcpConnect
            | Indicator::QuicHandshake
            | Indicator::QuicResume
            | Indicator::RttIncreaseUnderLoad => Some(Metric::Rtt),
            Indicator::OneWayDelay(Direction::Forward) => Some(Metric::OneWayForward),
            Indicator::OneWayDelay(Direction::Reverse) => Some(Metric::OneWayReverse),
            Indicator::Ipdv(Direction::Forward) => Some(Metric::IpdvForward),
            Indicator::Ipdv(Direction::Reverse) => Some(Metric::IpdvReverse),
            Indicator::Loss(_)
            | Indicator::Duplicates
            | Indicator::Reorders
            | Indicator::Late
            | Indicator::Goodput(_) => None,
        }
    }

    /// Whether it compares the sender's and the reflector's clocks.
    pub fn is_one_way(self) -> bool {
        matches!(self, Indicator::OneWayDelay(_))
    }
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Indicator::Rtt => f.write_str("rtt"),
            Indicator::OneWayDelay(d) => write!(f, "one_way_delay {d}"),
            Indicator::Ipdv(d) => write!(f, "ipdv {d}"),
            Indicator::TcpConnect => f.write_str("tcp_connect"),
            Indicator::QuicHandshake => f.write_str("quic_handshake"),
            Indicator::QuicResume => f.write_str("quic_resume"),
            Indicator::Loss(None) => f.write_str("loss"),
            Indicator::Loss(Some(d)) => write!(f, "loss {d}"),
            Indicator::Duplicates => f.write_str("duplicates"),
            Indicator::Reorders => f.write_str("reorders"),
            Indicator::Late => f.write_str("late"),
            Indicator::Goodput(None) => f.write_str("goodput"),
            Indicator::Goodput(Some(d)) => write!(f, "goodput {d}"),
            Indicator::RttIncreaseUnderLoad => f.write_str("rtt_increase_under_load"),
        }
    }
}

/// A quantile in parts per million: p50 is 500,000, p99.99 is 999,900, max is 1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantile(u32);

impl Quantile {
    pub const MAX: Quantile = Quantile(1_000_000);

    /// `p50`, `p99.9`, `max` (also `p100`); from p1 to p99.999.
    pub fn parse(text: &str) -> Option<Quantile> {
        if text == "max" || text == "p100" {
            return Some(Quantile::MAX);
        }
        let digits = text.strip_prefix('p')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return None;
        }
        let v: f64 = digits.parse().ok()?;
        let ppm = (v * 10_000.0).round();
        ((1.0..=99.999).contains(&v) && (ppm / 10_000.0 - v).abs() < 1e-9)
            .then_some(Quantile(ppm as u32))
    }

    /// From a fraction such as OpenSLO's `target: 0.99`.
    pub fn from_fraction(q: f64) -> Option<Quantile> {
        let ppm = (q * 1e6).round();
        (q.is_finite() && (0.01..=1.0).contains(&q) && (ppm / 1e6 - q).abs() < 1e-12)
            .then_some(Quantile(ppm as u32))
    }

    pub fn fraction(self) -> f64 {
        f64::from(self.0) / 1e6
    }

    pub fn is_max(self) -> bool {
        self == Quantile::MAX
    }
}

impl fmt::Display for Quantile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_max() {
            return f.write_str("max");
        }
        let mut text = format!("{:.4}", f64::from(self.0) / 10_000.0);
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
        write!(f, "p{text}")
    }
}

impl Serialize for Quantile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How the indicator is judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Comparison {
    /// At least `quantile` of the samples at or below the threshold (`p99 <= 2ms`).
    Latency { quantile: Quantile, at_most_ns: u64 },
    /// A ratio (0 to 1) at most this.
    Ratio { at_most: f64 },
    /// At least `1 - quantile` of the tests reach the rate (`min`: every test).
    Goodput {
        quantile: Quantile,
        at_least_bits_per_second: u64,
    },
    /// No worse than in the baseline window, by at most the margin: a latency quantile
    /// (`quantile` given) or a ratio (`None`).
    NoWorse {
        quantile: Option<Quantile>,
        margin: Margin,
    },
}

/// How much worse than the baseline an objective allows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Margin {
    /// A quantile larger by at most this many nanoseconds (`+0.5ms`).
    Latency(u64),
    /// A quantile larger by at most this share of the baseline's (`10%`).
    Relative(f64),
    /// A ratio larger by at most this much (`+0.05%`: percentage points).
    Points(f64),
}

impl Margin {
    /// The most the window's value may be, given the baseline's (ns, or a ratio).
    pub fn limit(self, baseline: f64) -> f64 {
        match self {
            Margin::Latency(ns) => baseline + ns as f64,
            Margin::Relative(r) => baseline * (1.0 + r),
            Margin::Points(p) => baseline + p,
        }
    }
}

impl fmt::Display for Margin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Margin::Latency(ns) => write!(f, "+{}", crate::text::duration(*ns)),
            Margin::Relative(r) => write!(f, "+{}", crate::text::percent(*r)),
            Margin::Points(p) => write!(f, "+{} (points)", crate::text::percent(*p)),
        }
    }
}

/// The window an objective compares itself with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// The judged window moved back by this much (`baseline: 7d`).
    Before(#[serde(serialize_with = "crate::text::serialize_duration")] Duration),
    /// A fixed range, Unix nanoseconds (`baseline: { from, to }`).
    Range { from_unix_ns: u64, to_unix_ns: u64 },
}

impl Baseline {
    /// The baseline's range for a judged window `(from, to)` (Unix ns).
    pub fn range(self, (from, to): (u64, u64)) -> (u64, u64) {
        match self {
            Baseline::Before(d) => {
                let back = d.as_nanos() as u64;
                (from.saturating_sub(back), to.saturating_sub(back))
            }
            Baseline::Range {
                from_unix_ns,
                to_unix_ns,
            } => (from_unix_ns, to_unix_ns),
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Comparison::Latency {
                quantile,
                at_most_ns,
            } => write!(f, "{quantile} <= {}", crate::text::duration(*at_most_ns)),
            Comparison::Ratio { at_most } => write!(f, "<= {}", crate::text::percent(*at_most)),
            Comparison::Goodput {
                quantile,
                at_least_bits_per_second,
            } => {
                let q = if quantile.is_max() {
                    "every test".to_owned()
                } else {
                    format!(
                        "p{} of tests",
                        crate::text::trim(100.0 - quantile.fraction() * 100.0)
                    )
                };
                write!(
                    f,
                    "{q} >= {}",
                    crate::text::rate(*at_least_bits_per_second as f64)
                )
            }
            Comparison::NoWorse {
                quantile: Some(q),
                margin,
            } => write!(f, "{q} <= baseline {margin}"),
            Comparison::NoWorse {
                quantile: None,
                margin,
            } => write!(f, "<= baseline {margin}"),
        }
    }
}

/// Which load a latency objective reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadChoice {
    Idle,
    /// While a throughput test between the pair ran.
    Bench,
    Any,
}

impl LoadChoice {
    pub fn load(self) -> Option<Load> {
        match self {
            LoadChoice::Idle => Some(Load::Idle),
            LoadChoice::Bench => Some(Load::Bench),
            LoadChoice::Any => None,
        }
    }
}

/// Which series an objective reads: every label given must match exactly. Protocol and
/// kind are always settled (the indicator implies them when the file does not say);
/// goodput objectives read throughput tests, which have a protocol but no probe kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Select {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_cloud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_cloud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ProbeKind>,
    pub load: LoadChoice,
}

impl Select {
    /// The history selection of these labels (`load` as given; `Any` reads both).
    pub fn selection(&self) -> Selection {
        Selection {
            src_agent: self.src_agent.clone(),
            src_cloud: self.src_cloud.clone(),
            src_region: self.src_region.clone(),
            dst_agent: self.dst_agent.clone(),
            dst_cloud: self.dst_cloud.clone(),
            dst_region: self.dst_region.clone(),
            protocol: self.protocol,
            kind: self.kind,
            load: self.load.load(),
        }
    }

    /// The labels as (name, value) pairs, as a history query takes them.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        self.selection().to_pairs()
    }
}

impl fmt::Display for Select {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = self.pairs();
        if pairs.is_empty() {
            return f.write_str("every series");
        }
        let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&text.join(","))
    }
}

/// The time an objective is judged over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// The last span before the gate runs.
    Last(#[serde(serialize_with = "crate::text::serialize_duration")] Duration),
    /// A fixed range, Unix nanoseconds.
    Range { from_unix_ns: u64, to_unix_ns: u64 },
}

impl Window {
    /// The range at `now` (Unix ns).
    pub fn range(self, now: u64) -> (u64, u64) {
        match self {
            Window::Last(d) => (now.saturating_sub(d.as_nanos() as u64), now),
            Window::Range {
                from_unix_ns,
                to_unix_ns,
            } => (from_unix_ns, to_unix_ns),
        }
    }
}

/// How sure an answer must be, and which data is good enough to judge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Judging {
    /// One-sided confidence of each bound, e.g. 0.95.
    pub confidence: f64,
    /// Fewer samples than this: inconclusive, whatever the bounds say.
    pub min_probes: u64,
    /// An agent silent this long before the window's end has stopped reporting.
    #[serde(serialize_with = "crate::text::serialize_duration")]
    pub max_report_age: Duration,
    /// The part of the window the data must cover (0 to 1).
    pub min_coverage: f64,
    /// One-way delay: the clocks' combined error estimate may be at most this part of the
    /// threshold.
    pub max_clock_error: f64,
    /// Probes per second each series must have sent over the part of the window covered.
    pub min_rate: Option<f64>,
    /// The part of the scheduled probes the agents may have skipped after stalls (0 to 1):
    /// more, and the rate fell below the configured one.
    pub max_skipped: f64,
}

/// One objective, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Objective {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub select: Select,
    pub indicator: Indicator,
    pub comparison: Comparison,
    pub window: Window,
    /// The window it compares itself with (`no_worse_than` objectives).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// A key objective decides the gate; any other only warns.
    pub key: bool,
    pub judging: Judging,
}

impl Objective {
    /// The selections it reads: one, or for an increase under load the loaded samples and
    /// then the idle ones.
    pub fn selections(&self) -> Vec<Select> {
        if self.indicator != Indicator::RttIncreaseUnderLoad {
            return vec![self.select.clone()];
        }
        [LoadChoice::Bench, LoadChoice::Idle]
            .into_iter()
            .map(|load| Select {
                load,
                ..self.select.clone()
            })
            .collect()
    }

    /// The latency threshold it counts samples against.
    pub fn threshold_ns(&self) -> Option<u64> {
        match self.comparison {
            Comparison::Latency { at_most_ns, .. } => Some(at_most_ns),
            _ => None,
        }
    }
}
