//! The RFC 3550 interarrival jitter estimator (section 6.4.1), shared by STAMP replies and
//! UDP throughput datagrams: J += (|D| - J) / 16, where D is the change in transit time
//! between consecutive arrivals. Clock offsets between the two ends cancel in D.

/// A running jitter estimate over transit times in arrival order.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rfc3550 {
    last_transit_ns: Option<i64>,
    estimate_ns: f64,
}

impl Rfc3550 {
    /// Takes the next arrival's transit time (receive - send, any common offset); returns
    /// the new estimate, or `None` for the first arrival (no difference yet).
    pub fn handle_transit(&mut self, transit_ns: i64) -> Option<f64> {
        let last = self.last_transit_ns.replace(transit_ns)?;
        let d = (transit_ns - last).unsigned_abs() as f64;
        self.estimate_ns += (d - self.estimate_ns) / 16.0;
        Some(self.estimate_ns)
    }

    /// The estimate now (0 until two arrivals were seen).
    pub fn estimate_ns(&self) -> f64 {
        self.estimate_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_rfc_3550_to_the_nanosecond() {
        let mut j = Rfc3550::default();
        // Transit 1 ms, 1.5 ms, 1 ms, 1 ms: D = 500 us, 500 us, 0.
        for (transit, want) in [
            (1_000_000, 0.0),
            (1_500_000, 31_250.0),
            (1_000_000, 60_546.875),
            (1_000_000, 56_762.695_312_5),
        ] {
            let got = j.handle_transit(transit);
            assert_eq!(got.is_some(), want > 0.0);
            assert_eq!(j.estimate_ns(), want);
        }
    }
}
