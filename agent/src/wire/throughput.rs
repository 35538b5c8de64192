//! Throughput test control (xcbench's own format). Control messages travel on one QUIC stream
//! of a mutually authenticated connection between two agents (ALPN `xcbench-bench/1`); data
//! travels on separate TCP connections, each opened with a [`Hello`] that carries the test's
//! cookie, so only a peer that passed the TLS handshake can get its bytes counted.
//!
//! ```text
//! control message: length (u32, big-endian, at most 64 KiB) | JSON
//! data hello (TCP, 20 bytes): "XT" | version 1 | stream index (u8) | cookie (16 bytes)
//! ```
//! Both sides send their own per-interval figures at the end, so each can print sender and
//! receiver columns (bytes written to the kernel, bytes delivered to the application).

use serde::{Deserialize, Serialize};

use super::WireError;

pub const MAX_CONTROL_LEN: usize = 64 * 1024;
pub const HELLO_LEN: usize = 20;
const HELLO_MAGIC: [u8; 2] = *b"XT";
const HELLO_VERSION: u8 = 1;

/// Which transport carries the bulk data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchProtocol {
    Tcp,
    /// Paced datagrams at `bitrate_bps`, each with a [`DataHeader`].
    Udp,
    /// One QUIC connection per stream (quinn), flow-control windows of `window_bytes`.
    Quic,
}

impl BenchProtocol {
    /// The name configs and the command line use.
    pub fn name(self) -> &'static str {
        match self {
            BenchProtocol::Tcp => "tcp",
            BenchProtocol::Udp => "udp",
            BenchProtocol::Quic => "quic",
        }
    }
}

/// Congestion controllers quinn offers, by the names `congestion` takes for QUIC.
pub const QUIC_CONGESTION: [&str; 3] = ["cubic", "newreno", "bbr"];

/// Which way the bytes flow, seen from the side that asked for the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The asking side sends.
    Forward,
    /// The asking side receives (iperf3 `-R`).
    Reverse,
    /// Both at once, each over its own connections.
    Bidirectional,
}

/// The rates a test may ask for (bits/s).
const RATES: std::ops::RangeInclusive<u64> = 1_000..=100_000_000_000;

/// What a test does; the asking side proposes, the answering side checks the limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestSpec {
    pub protocol: BenchProtocol,
    pub direction: Direction,
    pub duration_ms: u64,
    /// Leading time left out of the totals (slow start, iperf3 `-O`).
    pub omit_ms: u64,
    pub interval_ms: u64,
    /// Parallel connections per direction.
    pub streams: u16,
    /// Bytes per write (TCP) or per datagram, header included (UDP).
    pub write_bytes: u32,
    /// The rate per direction, split evenly over the streams: UDP's sending rate (required),
    /// a cap for TCP and QUIC (as fast as the path allows without one).
    #[serde(default)]
    pub bitrate_bps: Option<u64>,
    /// TCP congestion control for the sending sockets (e.g. "cubic", "bbr"); kernel default if
    /// absent.
    pub congestion: Option<String>,
    /// SO_SNDBUF/SO_RCVBUF for the data sockets; kernel autotuning if absent.
    pub window_bytes: Option<u32>,
}

impl TestSpec {
    /// The rate of each stream (bits/s): UDP's sending rate, TCP's and QUIC's cap.
    pub fn rate_per_stream(&self) -> Option<f64> {
        self.bitrate_bps
            .map(|b| b as f64 / f64::from(self.streams.max(1)))
    }

    /// Checks a proposal against the answering side's limits; the error names the field.
    pub fn check(&self) -> Result<(), String> {
        let bad = |field: &str, value: String, expected: &str| {
            Err(format!("{field} = {value}: {expected}"))
        };
        if !(100..=3_600_000).contains(&self.duration_ms) {
            return bad(
                "duration_ms",
                self.duration_ms.to_string(),
                "must be 100 ms to 1 h",
            );
        }
        if self.omit_ms >= self.duration_ms {
            return bad(
                "omit_ms",
                self.omit_ms.to_string(),
                "must be less than the duration",
            );
        }
        if !(100..=60_000).contains(&self.interval_ms) {
            return bad(
                "interval_ms",
                self.interval_ms.to_string(),
                "must be 100 ms to 60 s",
            );
        }
        if !(1..=128).contains(&self.streams) {
            return bad("streams", self.streams.to_string(), "must be 1 to 128");
        }
        match self.protocol {
            BenchProtocol::Tcp | BenchProtocol::Quic => {
                if !(1024..=4 << 20).contains(&self.write_bytes) {
                    return bad(
                        "write_bytes",
                        self.write_bytes.to_string(),
                        "must be 1 KiB to 4 MiB",
                    );
                }
                if let Some(b) = self.bitrate_bps.filter(|b| !RATES.contains(b)) {
                    return bad(
                        "bitrate_bps",
                        b.to_string(),
                        "must be 1 kbit/s to 100 Gbit/s",
                    );
                }
            }
            BenchProtocol::Udp => {
                if !(DATA_HEADER_LEN as u32..=8972).contains(&self.write_bytes) {
                    return bad(
                        "write_bytes",
                        self.write_bytes.to_string(),
                        "must be 36 to 8972 bytes per datagram",
                    );
                }
                match self.bitrate_bps {
                    Some(b) if RATES.contains(&b) => {}
                    Some(b) => {
                        return bad(
                            "bitrate_bps",
                            b.to_string(),
                            "must be 1 kbit/s to 100 Gbit/s",
                        )
                    }
                    None => return bad("bitrate_bps", "(none)".into(), "must be set for udp"),
                }
            }
        }
        if let (Some(c), BenchProtocol::Quic) = (&self.congestion, self.protocol) {
            if !QUIC_CONGESTION.contains(&c.as_str()) {
                return bad(
                    "congestion",
                    format!("{c:?}"),
                    "must be one of cubic, newreno, bbr for quic",
                );
            }
        }
        if let Some(c) = &self.congestion {
            if c.is_empty()
                || c.len() > 15
                || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return bad(
                    "congestion",
                    format!("{c:?}"),
                    "must be a kernel congestion control name such as \"cubic\"",
                );
            }
        }
        if let Some(w) = self.window_bytes {
            if !(4096..=256 << 20).contains(&w) {
                return bad("window_bytes", w.to_string(), "must be 4 KiB to 256 MiB");
            }
        }
        Ok(())
    }
}

/// Bytes moved by one stream in one interval, as one side saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalBytes {
    /// Since the test started (ms).
    pub start_ms: u64,
    pub end_ms: u64,
    pub bytes: u64,
    /// TCP segments retransmitted, or QUIC packets declared lost, in the interval (sending
    /// side only).
    pub retransmits: u64,
    /// Inside the omitted warm-up.
    pub omitted: bool,
    /// UDP: datagrams counted (sent, or received once each).
    #[serde(default)]
    pub packets: u64,
    /// UDP receiver: datagrams missing from the sequence (expected - received).
    #[serde(default)]
    pub lost: u64,
    /// UDP receiver: datagrams that arrived after a later one.
    #[serde(default)]
    pub out_of_order: u64,
    /// UDP receiver: RFC 3550 jitter at the interval's end (us).
    #[serde(default)]
    pub jitter_us: Option<u64>,
}

/// One stream's figures at one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamFigures {
    pub stream: u8,
    /// This side sent (true) or received (false) on this stream.
    pub sender: bool,
    pub intervals: Vec<IntervalBytes>,
    /// TCP_INFO of the sending socket at the end (sending side only).
    pub tcp: Option<TcpEnd>,
    /// quinn's path figures for the stream's connection at the end (QUIC only).
    #[serde(default)]
    pub quic: Option<QuicEnd>,
}

/// What quinn said about a QUIC data connection when the test ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuicEnd {
    /// Packets quinn declared lost (their frames are sent again).
    pub lost_packets: u64,
    pub sent_packets: u64,
    pub congestion_events: u64,
    pub cwnd_bytes: u64,
    pub rtt_us: u64,
    /// The path MTU quinn settled on (UDP payload bytes).
    pub mtu_bytes: u64,
    /// Datagrams per GSO send / GRO receive the socket supports (1 = no offload).
    pub gso_segments: u64,
    pub gro_segments: u64,
    /// Flow-control windows (stream, connection and send), bytes.
    pub window_bytes: u64,
}

/// What the kernel said about a sending socket when the test ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpEnd {
    pub retransmits: u64,
    pub snd_cwnd_bytes: u64,
    pub srtt_us: u64,
    pub delivery_rate_bytes_per_second: u64,
    /// Time the connection was limited by the peer's receive window (TCP_INFO, us).
    pub rwnd_limited_us: u64,
    /// Time it was limited by its own send buffer (us).
    pub sndbuf_limited_us: u64,
    pub busy_us: u64,
}

/// One control message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    Request(TestSpec),
    /// Go ahead: open the data connections to `data_port` with this cookie (32 hex digits).
    Accept {
        data_port: u16,
        cookie: String,
    },
    Refuse {
        reason: String,
    },
    /// One side's figures, sent when its part of the test is over.
    Results {
        streams: Vec<StreamFigures>,
    },
}

impl Control {
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let json = serde_json::to_vec(self).expect("control messages serialize");
        buf.extend_from_slice(&(json.len() as u32).to_be_bytes());
        buf.extend_from_slice(&json);
    }

    /// Decodes the message at the start of `buf`; returns it with the bytes it used.
    pub fn decode(buf: &[u8]) -> Result<(Control, usize), WireError> {
        if buf.len() < 4 {
            return Err(WireError::Truncated {
                need: 4,
                have: buf.len(),
            });
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > MAX_CONTROL_LEN {
            return Err(WireError::Invalid {
                field: "control length",
                value: len as u64,
                expected: "must be at most 65536",
            });
        }
        if buf.len() < 4 + len {
            return Err(WireError::Truncated {
                need: 4 + len,
                have: buf.len(),
            });
        }
        let msg = serde_json::from_slice(&buf[4..4 + len]).map_err(|_| WireError::Invalid {
            field: "control message",
            value: len as u64,
            expected: "must be a JSON xcbench control message",
        })?;
        Ok((msg, 4 + len))
    }
}

/// The first bytes of a data connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub stream: u8,
    pub cookie: [u8; 16],
}

impl Hello {
    pub fn encode(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&HELLO_MAGIC);
        buf.push(HELLO_VERSION);
        buf.push(self.stream);
        buf.extend_from_slice(&self.cookie);
    }

    pub fn decode(buf: &[u8]) -> Result<Hello, WireError> {
        if buf.len() < HELLO_LEN {
            return Err(WireError::Truncated {
                need: HELLO_LEN,
                have: buf.len(),
            });
        }
        if buf[..2] != HELLO_MAGIC {
            return Err(WireError::Invalid {
                field: "hello magic",
                value: u64::from(u16::from_be_bytes([buf[0], buf[1]])),
                expected: "must be \"XT\"",
            });
        }
        if buf[2] != HELLO_VERSION {
            return Err(WireError::Invalid {
                field: "hello version",
                value: u64::from(buf[2]),
                expected: "must be 1",
            });
        }
        let mut cookie = [0u8; 16];
        cookie.copy_from_slice(&buf[4..20]);
        Ok(Hello {
            stream: buf[3],
            cookie,
        })
    }
}

/// The start of every UDP data datagram (36 bytes), then zero padding:
/// "XU" | version 1 | stream (u8) | sequence (u64) | send time (Unix ns, u64) | cookie (16).
/// A sequence of `u64::MAX` is a hello: the asking side announcing where to send (reverse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHeader {
    pub stream: u8,
    pub seq: u64,
    pub sent_ns: u64,
    pub cookie: [u8; 16],
}

pub const DATA_HEADER_LEN: usize = 36;
pub const HELLO_SEQ: u64 = u64::MAX;

impl DataHeader {
    /// Writes the header into the front of `buf` (at least 36 bytes).
    pub fn write(&self, buf: &mut [u8]) {
        buf[..2].copy_from_slice(b"XU");
        buf[2] = 1;
        buf[3] = self.stream;
        buf[4..12].copy_from_slice(&self.seq.to_be_bytes());
        buf[12..20].copy_from_slice(&self.sent_ns.to_be_bytes());
        buf[20..36].copy_from_slice(&self.cookie);
    }

    pub fn decode(buf: &[u8]) -> Result<DataHeader, WireError> {
        if buf.len() < DATA_HEADER_LEN {
            return Err(WireError::Truncated {
                need: DATA_HEADER_LEN,
                have: buf.len(),
            });
        }
        if &buf[..2] != b"XU" || buf[2] != 1 {
            return Err(WireError::Invalid {
                field: "udp data magic",
                value: u64::from(u16::from_be_bytes([buf[0], buf[1]])),
                expected: "must be \"XU\" version 1",
            });
        }
        let u64_at = |i: usize| u64::from_be_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
        let mut cookie = [0u8; 16];
        cookie.copy_from_slice(&buf[20..36]);
        Ok(DataHeader {
            stream: buf[3],
            seq: u64_at(4),
            sent_ns: u64_at(12),
            cookie,
        })
    }
}

/// A cookie as the 32 hex digits `Accept` carries.
pub fn cookie_text(cookie: &[u8; 16]) -> String {
    cookie.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses `Accept`'s cookie text.
pub fn parse_cookie(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn spec() -> TestSpec {
        TestSpec {
            protocol: BenchProtocol::Tcp,
            direction: Direction::Forward,
            duration_ms: 10_000,
            omit_ms: 1_000,
            interval_ms: 1_000,
            streams: 4,
            write_bytes: 128 * 1024,
            bitrate_bps: None,
            congestion: Some("cubic".into()),
            window_bytes: None,
        }
    }

    #[test]
    fn control_round_trips_and_every_truncation_waits() {
        let msgs = [
            Control::Request(spec()),
            Control::Accept {
                data_port: 864,
                cookie: cookie_text(&[7; 16]),
            },
            Control::Refuse {
                reason: "busy".into(),
            },
            Control::Results {
                streams: vec![StreamFigures {
                    stream: 0,
                    sender: true,
                    intervals: vec![IntervalBytes {
                        start_ms: 0,
                        end_ms: 1000,
                        bytes: 5,
                        retransmits: 1,
                        omitted: true,
                        packets: 2,
                        lost: 1,
                        out_of_order: 0,
                        jitter_us: Some(3),
                    }],
                    tcp: Some(TcpEnd::default()),
                    quic: Some(QuicEnd::default()),
                }],
            },
        ];
        for m in msgs {
            let mut buf = Vec::new();
            m.encode(&mut buf);
            buf.extend_from_slice(b"next");
            let (got, used) = Control::decode(&buf).unwrap();
            assert_eq!((got, used), (m, buf.len() - 4));
            for cut in 0..used {
                assert!(matches!(
                    Control::decode(&buf[..cut]),
                    Err(WireError::Truncated { .. })
                ));
            }
        }
    }

    #[test]
    fn oversized_and_garbage_control_are_invalid() {
        let mut buf = (MAX_CONTROL_LEN as u32 + 1).to_be_bytes().to_vec();
        assert!(matches!(
            Control::decode(&buf),
            Err(WireError::Invalid { .. })
        ));
        buf = 5u32.to_be_bytes().to_vec();
        buf.extend_from_slice(b"hello");
        assert!(matches!(
            Control::decode(&buf),
            Err(WireError::Invalid { .. })
        ));
    }

    #[test]
    fn hello_round_trips_and_rejects_other_bytes() {
        let h = Hello {
            stream: 3,
            cookie: [9; 16],
        };
        let mut buf = Vec::new();
        h.encode(&mut buf);
        assert_eq!(buf.len(), HELLO_LEN);
        assert_eq!(Hello::decode(&buf).unwrap(), h);
        assert!(matches!(
            Hello::decode(&buf[..19]),
            Err(WireError::Truncated { .. })
        ));
        assert!(Hello::decode(b"GET / HTTP/1.1\r\nHost: x").is_err());
        assert_eq!(parse_cookie(&cookie_text(&h.cookie)), Some(h.cookie));
        assert_eq!(parse_cookie("zz"), None);
    }

    #[test]
    fn limits_name_the_field() {
        assert_eq!(spec().check(), Ok(()));
        let s = TestSpec {
            streams: 0,
            ..spec()
        };
        assert_eq!(s.check().unwrap_err(), "streams = 0: must be 1 to 128");
        let s = TestSpec {
            omit_ms: 10_000,
            ..spec()
        };
        assert_eq!(
            s.check().unwrap_err(),
            "omit_ms = 10000: must be less than the duration"
        );
        let s = TestSpec {
            congestion: Some("x;rm".into()),
            ..spec()
        };
        assert!(s.check().unwrap_err().starts_with("congestion = \"x;rm\""));
        // TCP (and QUIC) take a rate as a cap, in the same range as UDP's.
        for rate in [Some(200_000_000), None] {
            let s = TestSpec {
                bitrate_bps: rate,
                ..spec()
            };
            assert_eq!(s.check(), Ok(()), "{rate:?}");
        }
        let s = TestSpec {
            bitrate_bps: Some(999),
            ..spec()
        };
        assert_eq!(
            s.check().unwrap_err(),
            "bitrate_bps = 999: must be 1 kbit/s to 100 Gbit/s"
        );
    }

    #[test]
    fn quic_takes_quinn_congestion_controllers_only() {
        let quic = TestSpec {
            protocol: BenchProtocol::Quic,
            window_bytes: Some(25_000_000),
            ..spec()
        };
        assert_eq!(quic.check(), Ok(()));
        for cc in QUIC_CONGESTION {
            let s = TestSpec {
                congestion: Some(cc.into()),
                ..quic.clone()
            };
            assert_eq!(s.check(), Ok(()), "{cc}");
        }
        let s = TestSpec {
            congestion: Some("reno".into()),
            ..quic.clone()
        };
        assert_eq!(
            s.check().unwrap_err(),
            "congestion = \"reno\": must be one of cubic, newreno, bbr for quic"
        );
        let s = TestSpec {
            window_bytes: Some(1 << 30),
            ..quic
        };
        assert!(s
            .check()
            .unwrap_err()
            .starts_with("window_bytes = 1073741824"));
    }

    #[test]
    fn udp_limits_and_header() {
        let udp = TestSpec {
            protocol: BenchProtocol::Udp,
            write_bytes: 1372,
            bitrate_bps: Some(1_000_000_000),
            ..spec()
        };
        assert_eq!(udp.check(), Ok(()));
        let s = TestSpec {
            bitrate_bps: None,
            ..udp.clone()
        };
        assert_eq!(
            s.check().unwrap_err(),
            "bitrate_bps = (none): must be set for udp"
        );
        let s = TestSpec {
            write_bytes: 9000,
            ..udp
        };
        assert!(s.check().unwrap_err().starts_with("write_bytes = 9000"));
        let h = DataHeader {
            stream: 2,
            seq: 77,
            sent_ns: 123,
            cookie: [5; 16],
        };
        let mut buf = [0u8; 64];
        h.write(&mut buf);
        assert_eq!(DataHeader::decode(&buf).unwrap(), h);
        assert!(matches!(
            DataHeader::decode(&buf[..35]),
            Err(WireError::Truncated { .. })
        ));
        assert!(DataHeader::decode(&[0u8; 40]).is_err());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Control::decode(&bytes);
            let _ = Hello::decode(&bytes);
            let _ = DataHeader::decode(&bytes);
        }
    }
}
