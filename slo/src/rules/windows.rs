//! The workbook's burn conditions (page and ticket) and the windows they read, scaled from
//! a 30-day period to the one asked for; how a duration is written in PromQL and messages.

use std::time::Duration;

use super::{RulesError, MAX_PERIOD, MIN_PERIOD};

pub(super) const DAY: u64 = 86_400;
/// The period the workbook's windows are written for.
const NOMINAL_PERIOD: u64 = 30 * DAY;

/// One condition of an alert: the error ratio above `factor` x budget over both windows
/// (nominal seconds of a 30-day period). The long window shows the burn is real; the short
/// one that it is still going on, so the alert resets soon after the burn stops.
pub(super) struct Burn {
    pub(super) long: u64,
    pub(super) short: u64,
    pub(super) factor: f64,
}

/// Page: 2% of the budget spent in an hour, or 5% in six hours.
pub(super) const PAGE: [Burn; 2] = [
    Burn {
        long: 3_600,
        short: 300,
        factor: 14.4,
    },
    Burn {
        long: 6 * 3_600,
        short: 1_800,
        factor: 6.0,
    },
];

/// Ticket: 10% of the budget spent in a day, or 10% in three days.
pub(super) const TICKET: [Burn; 2] = [
    Burn {
        long: DAY,
        short: 2 * 3_600,
        factor: 3.0,
    },
    Burn {
        long: 3 * DAY,
        short: 6 * 3_600,
        factor: 1.0,
    },
];

/// Every window an alert reads, shortest first (nominal seconds).
const NOMINAL_WINDOWS: [u64; 7] = [300, 1_800, 3_600, 2 * 3_600, 6 * 3_600, DAY, 3 * DAY];

/// The windows scaled to a period.
pub(super) struct Windows {
    pub(super) period: Duration,
    /// (nominal seconds, scaled seconds), as NOMINAL_WINDOWS.
    pub(super) scaled: Vec<(u64, u64)>,
}

impl Windows {
    pub(super) fn new(period: Duration) -> Result<Windows, RulesError> {
        if !(MIN_PERIOD..=MAX_PERIOD).contains(&period) {
            return Err(RulesError::Period {
                value: duration_text(period),
                expected: format!(
                    "must be from {} to {}: the shortest alert window (5m of a 30d period) scales with it and must be at least 1m",
                    duration_text(MIN_PERIOD),
                    duration_text(MAX_PERIOD)
                ),
            });
        }
        let nominal_ns = u128::from(NOMINAL_PERIOD) * 1_000_000_000;
        let scaled = NOMINAL_WINDOWS
            .iter()
            .map(|&w| {
                // Rounded to whole seconds; at most 36.5d, so it fits.
                let s = (u128::from(w) * period.as_nanos() + nominal_ns / 2) / nominal_ns;
                (w, s as u64)
            })
            .collect();
        Ok(Windows { period, scaled })
    }

    /// The scaled window of a nominal one.
    pub(super) fn of(&self, nominal: u64) -> u64 {
        self.scaled
            .iter()
            .find(|(n, _)| *n == nominal)
            .map(|(_, s)| *s)
            .expect("every burn window is in NOMINAL_WINDOWS")
    }

    pub(super) fn period_text(&self) -> String {
        duration_text(self.period)
    }
}

/// A PromQL duration in its largest whole unit: `3d`, `6h`, `84m`, `70s`.
pub(super) fn seconds_text(s: u64) -> String {
    for (unit, len) in [("d", DAY), ("h", 3_600), ("m", 60)] {
        if s >= len && s.is_multiple_of(len) {
            return format!("{}{unit}", s / len);
        }
    }
    format!("{s}s")
}

/// A period as written back in messages: whole seconds as [`seconds_text`], else ms.
pub(super) fn duration_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        seconds_text(d.as_secs())
    } else {
        format!("{}ms", crate::text::trim(d.as_secs_f64() * 1e3))
    }
}
