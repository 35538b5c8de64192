//! A throughput test request, parsed once into a checked [`Test`] (parse, don't validate):
//! the asking side builds one from its command line or schedule, the answering side from the
//! request it decoded, and nothing else can make one. Also what the answering agent allows
//! ([`ServeLimits`]), who sends on which stream ([`Test::asker_sends`]), and how the QUIC
//! flow-control windows follow the path ([`window_for`]).

use std::ops::Deref;
use std::time::Duration;

use crate::wire::throughput::{Direction, Protocol, RefuseCode, TestSpec, DATA_HEADER_LEN};

/// The rates a test may ask for (bits/s).
pub const RATES: std::ops::RangeInclusive<u64> = 1_000..=100_000_000_000;
/// Congestion controllers quinn offers, by the names `congestion` takes for QUIC.
pub const QUIC_CONGESTION: [&str; 3] = ["cubic", "newreno", "bbr"];
/// The link rate QUIC windows are sized for when the asking side picks them: the largest
/// FastConnect/ExpressRoute port.
pub const WINDOW_LINK_BPS: u64 = 10_000_000_000;
/// QUIC windows are at least this large (short paths: scheduling delays, not the RTT,
/// dominate).
pub const MIN_WINDOW: u32 = 8 << 20;
/// And at most this large (the largest `window_bytes` a test may ask for).
pub const MAX_WINDOW: u32 = 256 << 20;

/// Twice the bandwidth-delay product of a [`WINDOW_LINK_BPS`] link at `rtt`, within
/// [`MIN_WINDOW`] and [`MAX_WINDOW`].
pub fn window_for(rtt: Duration) -> u32 {
    let bdp = u128::from(WINDOW_LINK_BPS / 8) * rtt.as_nanos() / 1_000_000_000;
    (2 * bdp).clamp(u128::from(MIN_WINDOW), u128::from(MAX_WINDOW)) as u32
}

/// Why a request is not a test any agent runs: names the field, the value and what was
/// expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value}: {expected}")]
pub struct SpecError {
    pub field: &'static str,
    pub value: String,
    pub expected: &'static str,
}

fn bad(field: &'static str, value: impl ToString, expected: &'static str) -> SpecError {
    SpecError {
        field,
        value: value.to_string(),
        expected,
    }
}

/// A test request that passed every check; read its fields through `Deref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test(TestSpec);

impl TryFrom<TestSpec> for Test {
    type Error = SpecError;

    fn try_from(s: TestSpec) -> Result<Test, SpecError> {
        if !(100..=3_600_000).contains(&s.duration_ms) {
            return Err(bad("duration_ms", s.duration_ms, "must be 100 ms to 1 h"));
        }
        if s.omit_ms >= s.duration_ms {
            return Err(bad("omit_ms", s.omit_ms, "must be less than the duration"));
        }
        if !(100..=60_000).contains(&s.interval_ms) {
            return Err(bad("interval_ms", s.interval_ms, "must be 100 ms to 60 s"));
        }
        if !(1..=128).contains(&s.streams) {
            return Err(bad("streams", s.streams, "must be 1 to 128"));
        }
        let rate = |b: u64| {
            if RATES.contains(&b) {
                Ok(())
            } else {
                Err(bad("bitrate_bps", b, "must be 1 kbit/s to 100 Gbit/s"))
            }
        };
        match s.protocol {
            Protocol::Tcp | Protocol::Quic => {
                if !(1024..=4 << 20).contains(&s.write_bytes) {
                    return Err(bad("write_bytes", s.write_bytes, "must be 1 KiB to 4 MiB"));
                }
                s.bitrate_bps.map(rate).transpose()?;
            }
            Protocol::Udp => {
                if !(DATA_HEADER_LEN as u32..=8972).contains(&s.write_bytes) {
                    return Err(bad(
                        "write_bytes",
                        s.write_bytes,
                        "must be 36 to 8972 bytes per datagram",
                    ));
                }
                match s.bitrate_bps {
                    Some(b) => rate(b)?,
                    None => return Err(bad("bitrate_bps", "(none)", "must be set for udp")),
                }
            }
        }
        if let Some(c) = &s.congestion {
            if s.protocol == Protocol::Quic && !QUIC_CONGESTION.contains(&c.as_str()) {
                return Err(bad(
                    "congestion",
                    format!("{c:?}"),
                    "must be one of cubic, newreno, bbr for quic",
                ));
            }
            if c.is_empty()
                || c.len() > 15
                || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(bad(
                    "congestion",
                    format!("{c:?}"),
                    "must be a kernel congestion control name such as \"cubic\"",
                ));
            }
        }
        if let Some(w) = s.window_bytes {
            if !(4096..=MAX_WINDOW).contains(&w) {
                return Err(bad("window_bytes", w, "must be 4 KiB to 256 MiB"));
            }
        }
        Ok(Test(s))
    }
}

impl Deref for Test {
    type Target = TestSpec;

    fn deref(&self) -> &TestSpec {
        &self.0
    }
}

impl Test {
    /// The request as it travels.
    pub fn spec(&self) -> &TestSpec {
        &self.0
    }

    /// QUIC without `window_bytes`: windows sized to the path's round trip ([`window_for`],
    /// always within the allowed range).
    pub fn with_window_for(self, rtt: Duration) -> Test {
        match (self.0.protocol, self.0.window_bytes) {
            (Protocol::Quic, None) => Test(TestSpec {
                window_bytes: Some(window_for(rtt)),
                ..self.0
            }),
            _ => self,
        }
    }

    /// The rate of each stream (bits/s): UDP's sending rate, TCP's and QUIC's cap.
    pub fn rate_per_stream(&self) -> Option<f64> {
        self.0
            .bitrate_bps
            .map(|b| b as f64 / f64::from(self.0.streams))
    }

    /// Per data connection, in stream order: does the asking side send on it?
    /// Bidirectional tests use `streams` connections each way.
    pub fn asker_sends(&self) -> Vec<bool> {
        let n = usize::from(self.0.streams);
        match self.0.direction {
            Direction::Forward => vec![true; n],
            Direction::Reverse => vec![false; n],
            Direction::Bidirectional => (0..2 * n).map(|i| i < n).collect(),
        }
    }

    pub fn duration_ns(&self) -> u64 {
        self.0.duration_ms * 1_000_000
    }
}

/// Why the answering agent declines a test, as the asking agent will read it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub code: RefuseCode,
    /// The request field at fault.
    pub field: Option<String>,
    pub reason: String,
}

impl From<SpecError> for Refusal {
    fn from(e: SpecError) -> Refusal {
        Refusal {
            code: RefuseCode::BadRequest,
            field: Some(e.field.to_owned()),
            reason: e.to_string(),
        }
    }
}

impl Refusal {
    /// Another test runs on this agent.
    pub fn busy() -> Refusal {
        Refusal {
            code: RefuseCode::Busy,
            field: None,
            reason: "busy: another throughput test is running on this agent".into(),
        }
    }

    /// The asking agent is not in `bench.allow`.
    pub fn not_allowed() -> Refusal {
        Refusal {
            code: RefuseCode::NotAllowed,
            field: None,
            reason: "this client is not in the peer's bench.allow".into(),
        }
    }
}

/// What the answering agent allows (its `[bench]` section).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeLimits {
    pub max_duration_ms: u64,
    pub max_streams: u16,
    pub max_udp_rate_bps: u64,
}

impl ServeLimits {
    /// Checks a test against this agent's limits; the refusal names the field, the value and
    /// the limit.
    pub fn check(&self, test: &Test) -> Result<(), Refusal> {
        let over = |field: &str, value: u64, limit: u64, setting: &str| Refusal {
            code: RefuseCode::OverLimit,
            field: Some(field.to_owned()),
            reason: format!("{field} = {value}: this agent allows at most {limit} ({setting})"),
        };
        if test.duration_ms > self.max_duration_ms {
            return Err(over(
                "duration_ms",
                test.duration_ms,
                self.max_duration_ms,
                "bench.max_duration",
            ));
        }
        if test.streams > self.max_streams {
            return Err(over(
                "streams",
                test.streams.into(),
                self.max_streams.into(),
                "bench.max_streams",
            ));
        }
        let udp_rate = test.bitrate_bps.filter(|_| test.protocol == Protocol::Udp);
        if let Some(b) = udp_rate.filter(|b| *b > self.max_udp_rate_bps) {
            return Err(over(
                "bitrate_bps",
                b,
                self.max_udp_rate_bps,
                "bench.max_udp_rate",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::throughput::tests::spec;

    fn check(s: TestSpec) -> Result<Test, String> {
        Test::try_from(s).map_err(|e| e.to_string())
    }

    #[test]
    fn limits_name_the_field() {
        assert!(check(spec()).is_ok());
        let err = Test::try_from(TestSpec {
            streams: 0,
            ..spec()
        })
        .unwrap_err();
        assert_eq!(
            err,
            SpecError {
                field: "streams",
                value: "0".into(),
                expected: "must be 1 to 128"
            }
        );
        assert_eq!(err.to_string(), "streams = 0: must be 1 to 128");
        assert_eq!(
            check(TestSpec {
                omit_ms: 10_000,
                ..spec()
            })
            .unwrap_err(),
            "omit_ms = 10000: must be less than the duration"
        );
        assert!(check(TestSpec {
            congestion: Some("x;rm".into()),
            ..spec()
        })
        .unwrap_err()
        .starts_with("congestion = \"x;rm\""));
        // TCP (and QUIC) take a rate as a cap, in the same range as UDP's.
        for rate in [Some(200_000_000), None] {
            let s = TestSpec {
                bitrate_bps: rate,
                ..spec()
            };
            assert!(check(s).is_ok(), "{rate:?}");
        }
        assert_eq!(
            check(TestSpec {
                bitrate_bps: Some(999),
                ..spec()
            })
            .unwrap_err(),
            "bitrate_bps = 999: must be 1 kbit/s to 100 Gbit/s"
        );
    }

    #[test]
    fn quic_takes_quinn_congestion_controllers_only() {
        let quic = TestSpec {
            protocol: Protocol::Quic,
            window_bytes: Some(25_000_000),
            ..spec()
        };
        assert!(check(quic.clone()).is_ok());
        for cc in QUIC_CONGESTION {
            let s = TestSpec {
                congestion: Some(cc.into()),
                ..quic.clone()
            };
            assert!(check(s).is_ok(), "{cc}");
        }
        assert_eq!(
            check(TestSpec {
                congestion: Some("reno".into()),
                ..quic.clone()
            })
            .unwrap_err(),
            "congestion = \"reno\": must be one of cubic, newreno, bbr for quic"
        );
        assert!(check(TestSpec {
            window_bytes: Some(1 << 30),
            ..quic
        })
        .unwrap_err()
        .starts_with("window_bytes = 1073741824"));
    }

    #[test]
    fn udp_needs_a_rate_and_datagram_sizes() {
        let udp = TestSpec {
            protocol: Protocol::Udp,
            write_bytes: 1372,
            bitrate_bps: Some(1_000_000_000),
            ..spec()
        };
        assert!(check(udp.clone()).is_ok());
        assert_eq!(
            check(TestSpec {
                bitrate_bps: None,
                ..udp.clone()
            })
            .unwrap_err(),
            "bitrate_bps = (none): must be set for udp"
        );
        assert!(check(TestSpec {
            write_bytes: 9000,
            ..udp
        })
        .unwrap_err()
        .starts_with("write_bytes = 9000"));
    }

    #[test]
    fn windows_follow_the_bandwidth_delay_product() {
        assert_eq!(window_for(Duration::from_micros(50)), MIN_WINDOW);
        // 10 Gbit/s x 10 ms = 12.5 MB; twice that.
        assert_eq!(window_for(Duration::from_millis(10)), 25_000_000);
        assert_eq!(window_for(Duration::from_secs(1)), MAX_WINDOW);
        let quic = Test::try_from(TestSpec {
            protocol: Protocol::Quic,
            ..spec()
        })
        .unwrap();
        let sized = quic.with_window_for(Duration::from_millis(10));
        assert_eq!(sized.window_bytes, Some(25_000_000));
        // A window asked for stays.
        assert_eq!(
            sized.with_window_for(Duration::from_secs(1)).window_bytes,
            Some(25_000_000)
        );
    }

    #[test]
    fn roles_and_limits() {
        let t = |direction| {
            Test::try_from(TestSpec {
                direction,
                streams: 2,
                ..spec()
            })
            .unwrap()
        };
        assert_eq!(t(Direction::Forward).asker_sends(), vec![true, true]);
        assert_eq!(t(Direction::Reverse).asker_sends(), vec![false, false]);
        assert_eq!(
            t(Direction::Bidirectional).asker_sends(),
            vec![true, true, false, false]
        );
        let limits = ServeLimits {
            max_duration_ms: 60_000,
            max_streams: 1,
            max_udp_rate_bps: 1_000_000,
        };
        let refusal = limits.check(&t(Direction::Forward)).unwrap_err();
        assert_eq!(refusal.code, RefuseCode::OverLimit);
        assert_eq!(refusal.field.as_deref(), Some("streams"));
        assert_eq!(
            refusal.reason,
            "streams = 2: this agent allows at most 1 (bench.max_streams)"
        );
        let long = Test::try_from(TestSpec {
            duration_ms: 120_000,
            streams: 1,
            ..spec()
        })
        .unwrap();
        assert_eq!(
            limits.check(&long).unwrap_err().field.as_deref(),
            Some("duration_ms")
        );
        let bad = Refusal::from(
            Test::try_from(TestSpec {
                streams: 0,
                ..spec()
            })
            .unwrap_err(),
        );
        assert_eq!(
            (bad.code, bad.field.as_deref()),
            (RefuseCode::BadRequest, Some("streams"))
        );
    }
}
