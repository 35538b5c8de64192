//! STAMP timestamps: NTP 64-bit format (32-bit seconds since 1900 + 32-bit fraction) by
//! default, or the truncated PTPv2 format (32-bit seconds since 1970 + 32-bit nanoseconds)
//! when the Z flag of the accompanying error estimate is set (RFC 8762 section 4.2.1).

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;

/// A raw 64-bit timestamp as carried on the wire, with its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub raw: u64,
    pub ptp: bool,
}

impl Timestamp {
    /// NTP-format timestamp for a Unix time in nanoseconds (what xcbench always sends).
    pub fn from_unix_ns(unix_ns: u64) -> Timestamp {
        let secs = unix_ns / 1_000_000_000 + NTP_UNIX_OFFSET_S;
        let nanos = unix_ns % 1_000_000_000;
        // Round to the nearest 2^-32 s so encode/decode round trips to within 1 ns.
        let frac = ((nanos << 32) + 500_000_000) / 1_000_000_000;
        Timestamp {
            raw: (secs << 32).wrapping_add(frac),
            ptp: false,
        }
    }

    /// Unix time in nanoseconds. NTP era 0 is assumed (valid until 2036).
    pub fn to_unix_ns(self) -> u64 {
        let secs = self.raw >> 32;
        let low = self.raw & 0xffff_ffff;
        if self.ptp {
            secs * 1_000_000_000 + low.min(999_999_999)
        } else {
            let nanos = (low * 1_000_000_000 + (1 << 31)) >> 32;
            secs.saturating_sub(NTP_UNIX_OFFSET_S) * 1_000_000_000 + nanos
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        // 2026-01-01T00:00:00.5Z
        let unix = 1_767_225_600_500_000_000;
        let ts = Timestamp::from_unix_ns(unix);
        assert_eq!(ts.raw >> 32, 1_767_225_600 + NTP_UNIX_OFFSET_S);
        assert_eq!(ts.raw & 0xffff_ffff, 1 << 31);
        assert_eq!(ts.to_unix_ns(), unix);
        let ptp = Timestamp {
            raw: (5u64 << 32) | 7,
            ptp: true,
        };
        assert_eq!(ptp.to_unix_ns(), 5_000_000_007);
    }

    proptest! {
        #[test]
        fn ntp_round_trip_within_1ns(unix in 0u64..2_000_000_000_000_000_000) {
            let back = Timestamp::from_unix_ns(unix).to_unix_ns();
            prop_assert!(back.abs_diff(unix) <= 1, "{} -> {}", unix, back);
        }
    }
}
