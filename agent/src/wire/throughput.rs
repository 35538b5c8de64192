//! Throughput test control and data framing (xcbench's own format). Control messages travel
//! on one QUIC stream of a mutually authenticated connection between two agents (ALPN
//! `xcbench-bench/1`); data travels on separate connections (TCP, or one QUIC connection per
//! stream), each opened with a [`Hello`] that carries the test's cookie, or in UDP datagrams
//! that each carry a [`DataHeader`] with it, so only a peer that passed the TLS handshake
//! can get its bytes counted.
//!
//! ```text
//! control message: length (u32, big-endian, at most 64 KiB) | JSON
//! data hello (TCP, QUIC; 20 bytes): "XT" | version 1 | stream index (u8) | cookie (16 bytes)
//! UDP data (36 bytes, then zero padding): "XU" | version 1 | stream (u8) | sequence (u64) |
//!     send time (the sender's monotonic clock, ns, u64; only differences are used) | cookie (16)
//! ```
//! Both sides send their own per-interval figures at the end, so each can print sender and
//! receiver columns (bytes written to the kernel, bytes delivered to the application).
//! A refusal carries a [`RefuseCode`] besides its reason; a peer that predates codes sends
//! none and it reads as [`RefuseCode::Unspecified`].

use serde::{Deserialize, Serialize};
pub use xcbench_snapshot::Protocol;

use super::WireError;

pub const MAX_CONTROL_LEN: usize = 64 * 1024;
pub const HELLO_LEN: usize = 20;
const HELLO_MAGIC: [u8; 2] = *b"XT";
const HELLO_VERSION: u8 = 1;
const DATA_MAGIC: [u8; 2] = *b"XU";
const DATA_VERSION: u8 = 1;

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

/// What a test does, as it travels: the asking side proposes, the answering side checks it
/// (`probe::throughput::Test` is the checked form) and its own limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestSpec {
    /// TCP; UDP (paced datagrams at `bitrate_bps`, each with a [`DataHeader`]); QUIC (one
    /// quinn connection per stream, flow-control windows of `window_bytes`).
    pub protocol: Protocol,
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
        #[serde(default)]
        code: RefuseCode,
        /// The request field at fault (with `over_limit` and `bad_request`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        reason: String,
    },
    /// One side's figures, sent when its part of the test is over.
    Results {
        streams: Vec<StreamFigures>,
    },
}

/// Why the answering agent declined a test: what the asking agent decides on (a busy peer is
/// asked again later; anything else is final). Travels as a snake_case string; a code this
/// version does not know reads as `Unspecified`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(from = "String", into = "&'static str")]
pub enum RefuseCode {
    /// Another throughput test runs on the answering agent.
    Busy,
    /// A request field is over the answering agent's limit (`[bench]`).
    OverLimit,
    /// The asking agent is not in the answering agent's `bench.allow`.
    NotAllowed,
    /// The request is malformed or asks for something no agent does.
    BadRequest,
    /// No code (a peer that predates codes) or one this version does not know.
    #[default]
    Unspecified,
}

impl RefuseCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefuseCode::Busy => "busy",
            RefuseCode::OverLimit => "over_limit",
            RefuseCode::NotAllowed => "not_allowed",
            RefuseCode::BadRequest => "bad_request",
            RefuseCode::Unspecified => "unspecified",
        }
    }
}

impl From<String> for RefuseCode {
    fn from(text: String) -> Self {
        match text.as_str() {
            "busy" => RefuseCode::Busy,
            "over_limit" => RefuseCode::OverLimit,
            "not_allowed" => RefuseCode::NotAllowed,
            "bad_request" => RefuseCode::BadRequest,
            _ => RefuseCode::Unspecified,
        }
    }
}

impl From<RefuseCode> for &'static str {
    fn from(code: RefuseCode) -> Self {
        code.as_str()
    }
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

/// The start of every UDP data datagram (36 bytes), then zero padding (see the module doc).
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
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.resize(start + DATA_HEADER_LEN, 0);
        self.write(&mut buf[start..]);
    }

    /// Writes the header over the front of `buf` (at least 36 bytes): a sender fills the
    /// datagrams of a whole burst in place, in one buffer handed to the kernel at once.
    pub fn write(&self, buf: &mut [u8]) {
        buf[..2].copy_from_slice(&DATA_MAGIC);
        buf[2] = DATA_VERSION;
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
        if buf[..2] != DATA_MAGIC || buf[2] != DATA_VERSION {
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
    super::hex::encode(cookie)
}

/// Parses `Accept`'s cookie text.
pub fn parse_cookie(text: &str) -> Option<[u8; 16]> {
    super::hex::decode_array(text)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn spec() -> TestSpec {
        TestSpec {
            protocol: Protocol::Tcp,
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
                code: RefuseCode::Busy,
                field: None,
                reason: "busy".into(),
            },
            Control::Refuse {
                code: RefuseCode::OverLimit,
                field: Some("streams".into()),
                reason: "streams = 64: this agent allows at most 16 (bench.max_streams)".into(),
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
        assert!(matches!(
            Hello::decode(b"GET / HTTP/1.1\r\nHost: x"),
            Err(WireError::Invalid {
                field: "hello magic",
                ..
            })
        ));
        assert_eq!(parse_cookie(&cookie_text(&h.cookie)), Some(h.cookie));
        assert_eq!(parse_cookie("zz"), None);
    }

    #[test]
    fn refusals_without_a_code_or_with_an_unknown_one_read_as_unspecified() {
        let old = br#"{"type":"refuse","reason":"busy: another throughput test is running"}"#;
        let mut buf = (old.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(old);
        let (msg, _) = Control::decode(&buf).unwrap();
        assert!(matches!(
            msg,
            Control::Refuse {
                code: RefuseCode::Unspecified,
                field: None,
                ..
            }
        ));
        let newer = br#"{"type":"refuse","code":"quota","reason":"x"}"#;
        let mut buf = (newer.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(newer);
        let (msg, _) = Control::decode(&buf).unwrap();
        assert!(matches!(
            msg,
            Control::Refuse {
                code: RefuseCode::Unspecified,
                ..
            }
        ));
        let mut out = Vec::new();
        Control::Refuse {
            code: RefuseCode::NotAllowed,
            field: None,
            reason: "x".into(),
        }
        .encode(&mut out);
        assert!(std::str::from_utf8(&out[4..])
            .unwrap()
            .contains(r#""code":"not_allowed""#));
    }

    #[test]
    fn udp_data_header_round_trips() {
        let h = DataHeader {
            stream: 2,
            seq: 77,
            sent_ns: 123,
            cookie: [5; 16],
        };
        let mut buf = Vec::new();
        h.encode(&mut buf);
        assert_eq!(buf.len(), DATA_HEADER_LEN);
        buf.resize(64, 0);
        assert_eq!(DataHeader::decode(&buf).unwrap(), h);
        assert!(matches!(
            DataHeader::decode(&buf[..35]),
            Err(WireError::Truncated { .. })
        ));
        assert!(matches!(
            DataHeader::decode(&[0u8; 40]),
            Err(WireError::Invalid {
                field: "udp data magic",
                ..
            })
        ));
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
