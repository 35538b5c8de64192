//! A latency family's buckets over a window as a Prometheus-compatible store holds them:
//! classic `_bucket` series or native histograms, each end read and the start subtracted
//! from the end bucket by bucket, and the bounds read as the collector files samples in
//! them ([`Band`]).

use std::collections::BTreeMap;

use xcbench_slo::text::duration;
use xcbench_snapshot::LatencyHistogram;

use super::{ends, matcher, PrometheusSource, Series, LOOKBACK_S};
use crate::gate::SourceError;

/// Why a store's buckets give no reading for the window.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unreadable {
    #[error("the store holds {family} over the window as {classic} samples in classic buckets and {native} in native histograms (collectors writing different forms): judge from the collectors, or write one form")]
    MixedForms {
        family: String,
        classic: u64,
        native: u64,
    },
    #[error("the native histograms' buckets changed inside the window (({}, {}] at its start is not a bucket at its end: a collector's native_histogram_error changed): judge a window after the change, or from the collector", duration(*lower), duration(*upper))]
    BucketsChanged { lower: u64, upper: u64 },
    #[error("the store's native histograms have buckets of different widths ending at {} (collectors with different native_histogram_error): judge from the collectors, or give them one", duration(*upper))]
    DifferentWidths { upper: u64 },
    #[error("the store's native histograms have overlapping buckets at {} (collectors with different native_histogram_error): judge from the collectors, or give them one", duration(*upper))]
    Overlapping { upper: u64 },
}

impl PrometheusSource {
    /// A latency family's buckets over the window under matchers `m`, and which form the
    /// store holds them in: classic (`<fam>_bucket`, what a scrape of the collector and
    /// `histograms = "classic"` remote write give) or native (the collector's remote write
    /// with `histograms = "native"`). A store holding both for the same samples (a scrape
    /// of both forms) is read from the native ones, which are finer; both holding
    /// different samples (collectors writing different forms) is no reading: `Err` says so.
    pub(super) async fn latency_bands(
        &self,
        fam: &str,
        m: &str,
        from: u64,
        to: u64,
    ) -> Result<Result<(Form, Vec<Band>), Unreadable>, SourceError> {
        let classic = self
            .classic_bands(&format!("{fam}_bucket{m}"), from, to)
            .await?;
        let native = self.native_bands(&format!("{fam}{m}"), from, to).await?;
        let count = |bands: &[Band]| bands.iter().map(|b| b.count).sum::<u64>();
        let classic_n = count(&classic);
        Ok(match native {
            Ok(native) if count(&native) == 0 => Ok((Form::Classic, classic)),
            Ok(native) if classic_n == 0 || classic_n == count(&native) => {
                Ok((Form::Native, native))
            }
            Ok(native) => Err(Unreadable::MixedForms {
                family: fam.to_owned(),
                classic: classic_n,
                native: count(&native),
            }),
            Err(_) if classic_n > 0 => Ok((Form::Classic, classic)),
            Err(why) => Err(why),
        })
    }

    /// Per classic bucket (its edges in ns, count in it) over the window, in order from 0;
    /// +Inf's edge is `u64::MAX`.
    async fn classic_bands(
        &self,
        expr: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Band>, SourceError> {
        let (at_from, at_to) = ends(expr, from, to);
        let read = |series: Vec<Series>| -> BTreeMap<u64, f64> {
            series
                .iter()
                .filter_map(|s| {
                    let le = s.metric.get("le")?;
                    let edge = if le == "+Inf" {
                        u64::MAX
                    } else {
                        (le.parse::<f64>().ok()? * 1e9).round() as u64
                    };
                    Some((edge, s.value.as_ref()?.1.parse::<f64>().ok()?))
                })
                .collect()
        };
        let (a, b) = (
            read(
                self.instant(&format!("sum by (le) ({at_from})"), from)
                    .await?,
            ),
            read(self.instant(&format!("sum by (le) ({at_to})"), to).await?),
        );
        // Cumulative counts to per-bucket differences over the window.
        let mut out = Vec::with_capacity(b.len());
        let (mut below, mut lower) = (0.0, 0);
        for (edge, cum_to) in &b {
            let cum = (cum_to - a.get(edge).copied().unwrap_or(0.0)).max(0.0);
            out.push(Band {
                lower,
                upper: *edge,
                count: (cum - below).max(0.0).round() as u64,
            });
            below = cum.max(below);
            lower = *edge;
        }
        Ok(out)
    }

    /// The native histogram buckets of `selector` over the window (summed over its series
    /// at each end, then the end's counts less the start's, bucket by bucket), in order;
    /// empty when the store holds none. Each end as [`ends`] reads it, series by series,
    /// because Prometheus 2.42's `last_over_time` does not read native histograms: at
    /// `from` each series' sample within the lookback; at `to` the same, and for a series
    /// that ended inside the window (found through the series API) its last sample. `Err`
    /// when the buckets do not line up (collectors or a restart with a different
    /// `native_histogram_error`).
    async fn native_bands(
        &self,
        selector: &str,
        from: u64,
        to: u64,
    ) -> Result<Result<Vec<Band>, Unreadable>, SourceError> {
        let window_s = to.saturating_sub(from).div_ceil(1_000_000_000);
        let at_from = self.instant(selector, from).await?;
        let mut at_to = self.instant(selector, to).await?;
        let live: Vec<BTreeMap<String, String>> = at_to.iter().map(|s| s.metric.clone()).collect();
        let seen = self
            .series_of(
                selector,
                from.saturating_sub(LOOKBACK_S * 1_000_000_000),
                to,
            )
            .await?;
        for labels in seen.iter().filter(|l| !live.contains(l)) {
            let exact: Vec<String> = labels.iter().map(|(k, v)| matcher(k, v)).collect();
            let raw = self
                .instant(
                    &format!("{{{}}}[{}s]", exact.join(","), window_s + LOOKBACK_S),
                    to,
                )
                .await?;
            at_to.extend(raw.into_iter().map(|mut s| {
                s.histogram = s.histograms.pop();
                s
            }));
        }
        let (a, b) = match (summed(at_from), summed(at_to)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(why), _) | (_, Err(why)) => return Ok(Err(why)),
        };
        if let Some((upper, (lower, _))) = a
            .iter()
            .find(|(u, (l, _))| b.get(u).is_none_or(|(bl, _)| bl != l))
        {
            return Ok(Err(Unreadable::BucketsChanged {
                lower: *lower,
                upper: *upper,
            }));
        }
        Ok(Ok(b
            .iter()
            .map(|(upper, (lower, n))| Band {
                lower: *lower,
                upper: *upper,
                count: (n - a.get(upper).map_or(0.0, |x| x.1)).max(0.0).round() as u64,
            })
            .collect()))
    }
}

/// The native histograms of `series` summed bucket by bucket: upper edge (ns) -> (lower
/// edge, samples). Prometheus writes a positive bucket as (lower, upper] in seconds;
/// HdrHistogram's buckets go down to 1 ns, so an edge's fraction of a nanosecond is below
/// any value the collector counted. `Err` when the buckets overlap (series of different
/// schemas).
fn summed(series: Vec<Series>) -> Result<BTreeMap<u64, (u64, f64)>, Unreadable> {
    let edge = |s: &str| s.parse::<f64>().map_or(0, |v| (v * 1e9).max(0.0) as u64);
    let mut out: BTreeMap<u64, (u64, f64)> = BTreeMap::new();
    for (_, h) in series.into_iter().filter_map(|s| s.histogram) {
        for (_, lower, upper, count) in h.buckets {
            let n = count.parse::<f64>().unwrap_or(0.0);
            let entry = out.entry(edge(&upper)).or_insert((edge(&lower), 0.0));
            entry.1 += n;
            if entry.0 != edge(&lower) {
                return Err(Unreadable::DifferentWidths {
                    upper: edge(&upper),
                });
            }
        }
    }
    let mut below = 0;
    for (upper, (lower, _)) in &out {
        if *lower < below {
            return Err(Unreadable::Overlapping { upper: *upper });
        }
        below = *upper;
    }
    Ok(out)
}

/// The form a latency family's buckets have in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    Classic,
    Native,
}

impl Form {
    pub(super) fn buckets(self) -> &'static str {
        match self {
            Form::Classic => "classic buckets",
            Form::Native => "native histogram buckets",
        }
    }
}

/// One bucket over the window: the samples the collector filed above the edge `lower` up
/// to the edge `upper` (ns; `upper` is `u64::MAX` for +Inf).
pub(super) struct Band {
    pub(super) lower: u64,
    pub(super) upper: u64,
    pub(super) count: u64,
}

impl Band {
    /// The collector files a sample under an edge when its 0.1%-wide HdrHistogram bucket
    /// starts at or below it: a bucket holds values up to the highest equivalent of its
    /// upper edge, and from just above the highest equivalent of its lower one.
    pub(super) fn highest_held(&self, layout: &LatencyHistogram) -> u64 {
        highest_equivalent(layout, self.upper)
    }

    pub(super) fn lowest_held(&self, layout: &LatencyHistogram) -> u64 {
        match self.lower {
            0 => 0,
            edge => highest_equivalent(layout, edge).saturating_add(1),
        }
    }
}

/// The highest value of the HdrHistogram bucket holding `edge` (`u64::MAX` for +Inf).
fn highest_equivalent(layout: &LatencyHistogram, edge: u64) -> u64 {
    match edge {
        u64::MAX => u64::MAX,
        edge => layout.inner().highest_equivalent(edge),
    }
}
