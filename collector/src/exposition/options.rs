//! What `/metrics` serves and how: [`Options`] from collector.toml (`exposition`,
//! `window_summaries`, `native_histograms`), the [`Format`] a scraper's `Accept` asks for,
//! and the [`Areas`] its `collect[]` parameters name.

use std::collections::BTreeSet;

use xcbench_snapshot::Metric;

/// How much `/metrics` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    /// What the shipped dashboards, rules and `gate --prometheus` read: every counter and
    /// gauge, the classic latency buckets, and window summaries only for the metrics in
    /// [`Options::window_summaries`].
    Lean,
    /// Everything, as before `lean` was the default: window summaries of every metric.
    Full,
}

impl Exposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Exposition::Lean => "lean",
            Exposition::Full => "full",
        }
    }
}

/// What `/metrics` serves: collector.toml's `exposition`, `window_summaries` and
/// `native_histograms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub exposition: Exposition,
    /// Under `lean`, the metrics served with `*_window_seconds` summaries (the pair
    /// dashboard reads RTT's); `full` serves every metric's.
    pub window_summaries: BTreeSet<Metric>,
    /// Native histograms in protobuf answers, and their schema.
    pub native: Native,
}

/// Native histograms (protobuf answers only; the text format has none), beside or instead
/// of the classic buckets under the same family name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Native {
    Off,
    /// Both under one name: for a Prometheus that keeps both (2.45 and later with
    /// `scrape_classic_histograms: true`). Prometheus 2.42 keeps only the native one.
    Beside {
        schema: i8,
    },
    /// Native only: the classic buckets (`_bucket`) are not served to protobuf scrapers.
    Replace {
        schema: i8,
    },
}

impl Native {
    pub fn schema(self) -> Option<i8> {
        match self {
            Native::Off => None,
            Native::Beside { schema } | Native::Replace { schema } => Some(schema),
        }
    }

    /// The coarsest schema (-4 ..= 8) whose buckets keep a value within `relative_error` of
    /// their middle: `(base - 1) / (base + 1) <= relative_error`, `base = 2^(2^-schema)`.
    /// `None` when even schema 8 is coarser.
    pub fn schema_for(relative_error: f64) -> Option<i8> {
        (-4i8..=8).find(|s| Native::error_of(*s) <= relative_error)
    }

    /// The largest relative distance from a bucket's middle to its edges at `schema`.
    pub fn error_of(schema: i8) -> f64 {
        let base = 2f64.powf(2f64.powi(-i32::from(schema)));
        (base - 1.0) / (base + 1.0)
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            exposition: Exposition::Lean,
            window_summaries: [Metric::Rtt].into(),
            native: Native::Off,
        }
    }
}

impl Options {
    /// Everything (`exposition = "full"`).
    pub fn full() -> Options {
        Options {
            exposition: Exposition::Full,
            ..Options::default()
        }
    }

    /// The metrics whose window the store must keep: those with a summary served. The
    /// others keep no recent slots at all, which is most of a series' memory.
    pub fn windowed(&self) -> BTreeSet<Metric> {
        match self.exposition {
            Exposition::Full => Metric::ALL.iter().copied().collect(),
            Exposition::Lean => self.window_summaries.clone(),
        }
    }
}

/// The exposition formats a scraper can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
    /// encoding=delimited`.
    Protobuf,
}

impl Format {
    /// The format an `Accept` header prefers: protobuf when it is listed with a weight at
    /// least text's (Prometheus asks so when scraping native histograms), else text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut proto_q, mut text_q) = (0.0f64, 0.0f64);
        for entry in accept.split(',') {
            let mut parts = entry.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let (mut q, mut delimited, mut family) = (1.0, false, false);
            for p in parts {
                match p.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                    Some(("q", v)) => q = v.parse().unwrap_or(0.0),
                    Some(("encoding", "delimited")) => delimited = true,
                    Some(("proto", "io.prometheus.client.MetricFamily")) => family = true,
                    _ => {}
                }
            }
            match media.as_str() {
                "application/vnd.google.protobuf" if delimited && family => {
                    proto_q = proto_q.max(q)
                }
                "text/plain" | "*/*" | "text/*" => text_q = text_q.max(q),
                _ => {}
            }
        }
        if proto_q > 0.0 && proto_q >= text_q {
            Format::Protobuf
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::Protobuf => "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        }
    }
}

/// The areas of families an answer holds: every one by default, or those a scrape names
/// with `/metrics?collect[]=<area>` (node_exporter's parameter for its collectors). The
/// collector's own families alone (`collect[]=collector`) cost the same at any fleet size:
/// a self-monitoring scrape, or a script watching the remote-write queue, need not render
/// every series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub series: bool,
    pub throughput: bool,
    pub agents: bool,
    pub slo: bool,
    pub collector: bool,
}

impl Areas {
    pub const ALL: Areas = Areas {
        series: true,
        throughput: true,
        agents: true,
        slo: true,
        collector: true,
    };
    pub const NAMES: [&'static str; 5] = ["series", "throughput", "agents", "slo", "collector"];

    /// From a query's `(name, value)` pairs: the `collect[]` values (every area when there
    /// are none); other parameters are not this one's. An unknown area is an error naming
    /// it and the choices.
    pub fn from_query<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Areas, String> {
        let mut areas = None::<Areas>;
        for (_, value) in params.into_iter().filter(|(k, _)| *k == "collect[]") {
            let a = areas.get_or_insert(Areas {
                series: false,
                throughput: false,
                agents: false,
                slo: false,
                collector: false,
            });
            let flag = match value {
                "series" => &mut a.series,
                "throughput" => &mut a.throughput,
                "agents" => &mut a.agents,
                "slo" => &mut a.slo,
                "collector" => &mut a.collector,
                other => {
                    return Err(format!(
                        "collect[] = {other:?}: must be one of {}",
                        Areas::NAMES.join(", ")
                    ))
                }
            };
            *flag = true;
        }
        Ok(areas.unwrap_or(Areas::ALL))
    }
}
