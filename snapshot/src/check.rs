//! What a snapshot must be to be taken: [`SnapshotError`], and the checks
//! [`Snapshot::decode_histograms`] makes (format version, identities, unique series keys, flows,
//! loss directions dated before the interval, every histogram's layout and count).

use crate::{
    histogram, label, HistogramDelta, Histograms, Identity, Metric, SeriesSnapshot, Snapshot,
};
use crate::{FORMAT_VERSION, MAX_EARLIER_DIRECTIONS, MAX_FLOWS};

/// Why a snapshot could not be decoded; messages name the field, the value and what was expected.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SnapshotError {
    #[error("snapshot is {size} bytes: must be at most {max}")]
    TooLarge { size: usize, max: usize },
    #[error("snapshot is not valid JSON for the format: {0}")]
    Json(String),
    #[error("snapshot {field} = {value}: {expected}")]
    Field {
        field: String,
        value: String,
        expected: String,
    },
}

impl SnapshotError {
    fn field(field: impl Into<String>, value: impl ToString, expected: impl Into<String>) -> Self {
        SnapshotError::Field {
            field: field.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

impl Snapshot {
    /// Checks the snapshot (format version, identifiers, unique series keys, every histogram's
    /// layout and count) and returns the decoded histograms: `result[i][j]` belongs to
    /// `series[i].histograms[j]`.
    pub fn decode_histograms(&self) -> Result<Histograms, SnapshotError> {
        if self.format != FORMAT_VERSION {
            return Err(SnapshotError::field(
                "format",
                self.format,
                format!("must be {FORMAT_VERSION}"),
            ));
        }
        if self.seq == 0 {
            return Err(SnapshotError::field("seq", 0, "must be at least 1"));
        }
        if self.interval_end_unix_ns < self.interval_start_unix_ns {
            return Err(SnapshotError::field(
                "interval_end_unix_ns",
                self.interval_end_unix_ns,
                "must not be before interval_start_unix_ns",
            ));
        }
        check_identity("agent", &self.agent)?;
        let mut keys = std::collections::HashSet::new();
        let mut decoded = Vec::with_capacity(self.series.len());
        for (i, s) in self.series.iter().enumerate() {
            let at = format!("series[{i}]");
            check_identity(&format!("{at}.peer"), &s.peer)?;
            if !keys.insert((&s.peer.id, s.protocol, s.kind, s.load)) {
                return Err(SnapshotError::field(
                    format!("{at}.peer.id"),
                    &s.peer.id,
                    "must be unique per protocol, kind and load within a snapshot",
                ));
            }
            check_earlier(&at, s, self.interval_start_unix_ns)?;
            let mut metrics = std::collections::HashSet::new();
            let mut series = Vec::with_capacity(s.histograms.len() + s.flows.len());
            for (j, h) in s.histograms.iter().enumerate() {
                let hat = format!("{at}.histograms[{j}]");
                if !metrics.insert(h.metric) {
                    return Err(SnapshotError::field(
                        format!("{hat}.metric"),
                        h.metric.as_str(),
                        "must appear once per series",
                    ));
                }
                series.push(decode_delta(&hat, h)?);
            }
            // Each flow's RTT follows the series' own histograms, in flow order.
            check_flows(&at, s)?;
            for (k, f) in s.flows.iter().enumerate() {
                if let Some(h) = &f.rtt {
                    series.push(decode_delta(&format!("{at}.flows[{k}].rtt"), h)?);
                }
            }
            decoded.push(series);
        }
        for (i, b) in self.throughput.iter().enumerate() {
            check_identity(&format!("bench[{i}].peer"), &b.peer)?;
        }
        for (i, f) in self.throughput_flows.iter().enumerate() {
            check_identity(&format!("bench_flows[{i}].peer"), &f.peer)?;
        }
        Ok(decoded)
    }
}

fn decode_delta(at: &str, h: &HistogramDelta) -> Result<Vec<(u64, u64)>, SnapshotError> {
    let (buckets, total) = histogram::decode_buckets_base64(&h.hdr)
        .map_err(|e| SnapshotError::field(format!("{at}.hdr"), "<histogram>", e.to_string()))?;
    if total != h.count {
        return Err(SnapshotError::field(
            format!("{at}.count"),
            h.count,
            format!("must equal the histogram's total count {total}"),
        ));
    }
    Ok(buckets)
}

/// At most [`MAX_FLOWS`] flows, numbered below it in ascending order, each RTT an `rtt`.
fn check_flows(at: &str, s: &SeriesSnapshot) -> Result<(), SnapshotError> {
    if s.flows.len() > MAX_FLOWS {
        return Err(SnapshotError::field(
            format!("{at}.flows"),
            format!("{} entries", s.flows.len()),
            format!("at most {MAX_FLOWS}"),
        ));
    }
    let mut last = None;
    for (k, f) in s.flows.iter().enumerate() {
        if usize::from(f.flow) >= MAX_FLOWS || last.is_some_and(|l| f.flow <= l) {
            return Err(SnapshotError::field(
                format!("{at}.flows[{k}].flow"),
                f.flow,
                format!("must be below {MAX_FLOWS} and above the flow before it"),
            ));
        }
        last = Some(f.flow);
        if let Some(h) = f.rtt.as_ref().filter(|h| h.metric != Metric::Rtt) {
            return Err(SnapshotError::field(
                format!("{at}.flows[{k}].rtt.metric"),
                h.metric.as_str(),
                "must be rtt",
            ));
        }
    }
    Ok(())
}

fn check_earlier(at: &str, s: &SeriesSnapshot, start: u64) -> Result<(), SnapshotError> {
    let earlier = &s.earlier_directions;
    if earlier.len() > MAX_EARLIER_DIRECTIONS {
        return Err(SnapshotError::field(
            format!("{at}.earlier_directions"),
            format!("{} entries", earlier.len()),
            format!("at most {MAX_EARLIER_DIRECTIONS}"),
        ));
    }
    for (k, e) in earlier.iter().enumerate() {
        if e.interval_end_unix_ns > start {
            return Err(SnapshotError::field(
                format!("{at}.earlier_directions[{k}].interval_end_unix_ns"),
                e.interval_end_unix_ns,
                format!("must not be after this snapshot's interval_start_unix_ns {start}"),
            ));
        }
        if e.lost_forward.checked_add(e.lost_reverse).is_none() {
            return Err(SnapshotError::field(
                format!("{at}.earlier_directions[{k}].lost_reverse"),
                e.lost_reverse,
                "lost_forward + lost_reverse must fit in 64 bits",
            ));
        }
    }
    Ok(())
}

fn check_identity(at: &str, identity: &Identity) -> Result<(), SnapshotError> {
    for (name, value) in [("region", &identity.region), ("zone", &identity.zone)] {
        if let Err(expected) = label::check_label_value(value) {
            return Err(SnapshotError::field(
                format!("{at}.{name}"),
                format!("{value:?}"),
                expected,
            ));
        }
    }
    Ok(())
}
