//! The 16-bit Error Estimate field (RFC 4656 section 4.1.2, used by RFC 8762):
//! S (clock synchronized to UTC), Z (0 = NTP, 1 = PTP timestamp format), 6-bit Scale and
//! 8-bit Multiplier; the error is Multiplier * 2^(Scale - 32) seconds. Also where an agent's
//! estimate comes from ([`ClockErrorSource`]): the configuration names it, `net::clock` reads it.

/// Where the clock's STAMP error estimate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockErrorSource {
    /// The kernel's NTP state (adjtimex: STA_UNSYNC and maxerror), what chrony and ntpd
    /// keep up to date.
    #[default]
    Kernel,
    /// Declared in the configuration, in nanoseconds, as synchronised: for clocks the
    /// kernel's NTP state does not describe (PTP through phc2sys, a clock shared with the
    /// peer as in the lab). The operator vouches for it.
    Declared(u64),
}

/// A decoded error estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorEstimate {
    pub synchronized: bool,
    pub ptp: bool,
    pub scale: u8,
    pub multiplier: u8,
}

impl ErrorEstimate {
    /// The smallest representable estimate that is at least `error_ns` (never understated).
    pub fn from_error_ns(error_ns: u64, synchronized: bool) -> ErrorEstimate {
        // error_ns * 2^32 / 1e9 units of 2^-32 s; pick the smallest scale that fits in 8 bits.
        let units = ((u128::from(error_ns) << 32) / 1_000_000_000).max(1);
        let mut scale = 0u8;
        while (units >> scale) > 255 && scale < 63 {
            scale += 1;
        }
        let mut multiplier = (units >> scale) as u64;
        if (multiplier as u128) << scale < units {
            multiplier += 1;
        }
        if multiplier > 255 {
            scale += 1;
            multiplier = multiplier.div_ceil(2);
        }
        ErrorEstimate {
            synchronized,
            ptp: false,
            scale: scale.min(63),
            multiplier: multiplier.clamp(1, 255) as u8,
        }
    }

    /// The estimate in nanoseconds (saturating).
    pub fn error_ns(self) -> u64 {
        let units = u128::from(self.multiplier) << self.scale;
        u64::try_from((units * 1_000_000_000) >> 32).unwrap_or(u64::MAX)
    }

    pub fn to_bits(self) -> u16 {
        (u16::from(self.synchronized) << 15)
            | (u16::from(self.ptp) << 14)
            | (u16::from(self.scale & 0x3f) << 8)
            | u16::from(self.multiplier)
    }

    pub fn from_bits(bits: u16) -> ErrorEstimate {
        ErrorEstimate {
            synchronized: bits & 0x8000 != 0,
            ptp: bits & 0x4000 != 0,
            scale: ((bits >> 8) & 0x3f) as u8,
            multiplier: (bits & 0xff) as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bits_layout() {
        let e = ErrorEstimate {
            synchronized: true,
            ptp: false,
            scale: 0x15,
            multiplier: 0x7f,
        };
        assert_eq!(e.to_bits(), 0x957f);
        assert_eq!(ErrorEstimate::from_bits(0x957f), e);
    }

    proptest! {
        #[test]
        fn never_understates_and_within_1_percent(error_ns in 1u64..100_000_000_000) {
            let e = ErrorEstimate::from_error_ns(error_ns, false);
            let back = e.error_ns();
            prop_assert!(back + 1 >= error_ns, "{} -> {}", error_ns, back);
            prop_assert!(back <= error_ns + error_ns / 100 + 1, "{} -> {}", error_ns, back);
            prop_assert_eq!(ErrorEstimate::from_bits(e.to_bits()), e);
        }
    }
}
