//! The reflector held to its promises: per-session sequences and symmetric sizes, the SSID,
//! authenticated mode (keys per source, replays, rotation), the bounded session table and the
//! rate limits.

use super::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn test_packet(seq: u32, len: usize) -> Vec<u8> {
    ssid_packet(seq, 0, len)
}

fn ssid_packet(seq: u32, ssid: u16, len: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    TestPacket {
        seq,
        timestamp: Timestamp::from_unix_ns(1_000 + u64::from(seq)),
        error_estimate: ErrorEstimate::from_error_ns(1_000, true),
        ssid,
        len,
    }
    .encode(&mut buf);
    buf
}

#[test]
fn per_session_sequence_and_symmetric_size() {
    let mut r = Reflector::new(ReflectorLimits::default());
    let est = ErrorEstimate::from_error_ns(2_000, false);
    let mut out = Vec::new();
    for (i, port) in [(0u32, 1u16), (1, 1), (2, 2), (3, 1)] {
        let req = test_packet(i + 100, 44 + i as usize * 10);
        r.handle_datagram(
            &Arrival {
                ttl: Some(64),
                ..Arrival::new(Moment::at(5_000), addr(port))
            },
            est,
            &req,
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), req.len());
        let reply = ReflectedPacket::decode(&out).unwrap();
        assert_eq!(reply.sender_seq, i + 100);
        assert_eq!(reply.sender_ttl, 64);
        assert_eq!(
            reply.sender_timestamp,
            TestPacket::decode(&req).unwrap().timestamp.raw
        );
        let want_seq = match i {
            0 => 0,
            1 => 1,
            2 => 0,
            _ => 2,
        };
        assert_eq!(reply.seq, want_seq, "packet {i}");
        assert_eq!(reply.receive_timestamp.to_unix_ns(), 5_000);
    }
    assert_eq!(r.take_counters().reflected, 4);
}

/// RFC 8972: the reply carries the test packet's SSID, and two senders behind one
/// address and port (a NAT) with different SSIDs are two sessions, each counting its own.
#[test]
fn the_ssid_is_copied_and_tells_sessions_apart() {
    let mut r = Reflector::new(ReflectorLimits::default());
    let est = ErrorEstimate::from_error_ns(1, false);
    let mut out = Vec::new();
    let mut reply = |r: &mut Reflector, ssid: u16| {
        r.handle_datagram(
            &Arrival::new(Moment::at(1), addr(7)),
            est,
            &ssid_packet(1, ssid, 44),
            &mut out,
        )
        .unwrap();
        ReflectedPacket::decode(&out).unwrap()
    };
    let a0 = reply(&mut r, 0xa1);
    let b0 = reply(&mut r, 0xb2);
    let a1 = reply(&mut r, 0xa1);
    assert_eq!((a0.ssid, b0.ssid, a1.ssid), (0xa1, 0xb2, 0xa1));
    assert_eq!((a0.seq, b0.seq, a1.seq), (0, 0, 1));
    assert_eq!(r.session_count(), 2);
}

/// RFC 8972 TLVs through the session: Direct Measurement counts the session's packets,
/// Follow-Up Telemetry returns the previous reply's sequence number and the T3 it went
/// with, Class of Service asks for the reply's DSCP; the reply is as long as the test
/// packet.
#[test]
fn tlvs_are_answered_from_the_session() {
    use crate::wire::stamp_tlv::{self, kind, U};
    let mut r = Reflector::new(ReflectorLimits::default());
    let est = ErrorEstimate::from_error_ns(1, true);
    let mut out = Vec::new();
    let mut request = test_packet(0, 44);
    stamp_tlv::put(&mut request, U, kind::DIRECT_MEASUREMENT, &[0; 12]);
    stamp_tlv::put(&mut request, U, kind::FOLLOW_UP, &[0; 16]);
    stamp_tlv::put(&mut request, U, kind::CLASS_OF_SERVICE, &[34 << 2, 0, 0, 0]);
    stamp_tlv::pad(&mut request, 120);
    let arrival = Arrival {
        tos: Some(34 << 2),
        ..Arrival::new(Moment::at(1), addr(5))
    };
    for (i, t3) in [(0u32, 111u64), (1, 222)] {
        let seal = r
            .handle_datagram(&arrival, est, &request, &mut out)
            .unwrap();
        assert_eq!(out.len(), 120);
        assert_eq!((seal.dscp, seal.follows_up()), (Some(34), true));
        // DM value at 48..60: S_TxC as sent, R_RxC and R_TxC counting this packet.
        assert_eq!(
            &out[52..60],
            &[[0, 0, 0, i as u8 + 1], [0, 0, 0, i as u8 + 1]].concat()[..]
        );
        // Follow-Up value at 64..80: the previous reply (none before the first).
        let (seq, ts) = match i {
            0 => (0u32, 0u64),
            _ => (0, 111u64 << 32),
        };
        assert_eq!(&out[64..68], &seq.to_be_bytes());
        assert_eq!(&out[68..76], &ts.to_be_bytes());
        let t3 = Timestamp {
            raw: t3 << 32,
            ptp: false,
        };
        seal.stamp_transmit(&mut out, t3);
        r.transmitted(&seal, t3);
    }
}

#[test]
fn malformed_is_counted_and_never_answered() {
    let mut r = Reflector::new(ReflectorLimits::default());
    let mut out = vec![1, 2, 3];
    let est = ErrorEstimate::from_error_ns(1, false);
    for len in [0, 1, 43] {
        let err = r
            .handle_datagram(
                &Arrival::new(Moment::at(0), addr(1)),
                est,
                &vec![0; len],
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(err, ReflectError::Malformed(_)));
    }
    assert!(r
        .handle_datagram(
            &Arrival::new(Moment::at(0), addr(1)),
            est,
            &vec![0; 9001],
            &mut out
        )
        .is_err());
    assert_eq!(out, vec![1, 2, 3], "nothing written");
    let c = r.take_counters();
    assert_eq!((c.malformed, c.reflected), (4, 0));
}

mod authenticated {
    use super::*;
    use crate::wire::stamp_auth::{StampKey, StampKeys};

    const K1: &[u8] = b"0123456789abcdef";
    const K2: &[u8] = b"fedcba9876543210";

    fn keys(secrets: &[&[u8]]) -> Arc<StampKeys> {
        let keys = secrets.iter().map(|s| StampKey::new(s).unwrap()).collect();
        Arc::new(StampKeys::new(keys).unwrap())
    }

    fn sealed(seq: u32, t1_s: u64, key: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let p = TestPacket {
            seq,
            timestamp: Timestamp::from_unix_ns(t1_s * 1_000_000_000),
            error_estimate: ErrorEstimate::from_error_ns(1_000, true),
            ssid: 7,
            len: 120,
        };
        p.encode_authenticated(&StampKey::new(key).unwrap(), &mut buf);
        buf
    }

    fn reflector(k: ReflectorKeys) -> Reflector {
        let mut r = Reflector::new(ReflectorLimits::default());
        r.set_keys(k);
        r
    }

    fn send(r: &mut Reflector, from: SocketAddr, packet: &[u8]) -> Result<Vec<u8>, ReflectError> {
        let mut out = Vec::new();
        let est = ErrorEstimate::from_error_ns(1, false);
        let seal = r.handle_datagram(
            &Arrival {
                ttl: Some(60),
                ..Arrival::new(Moment::at(1), from)
            },
            est,
            packet,
            &mut out,
        )?;
        seal.stamp_transmit(&mut out, Timestamp::from_unix_ns(5));
        Ok(out)
    }

    /// The reply is as long as the test packet, sealed with the key it came with (during
    /// a rotation, the previous one for a sender not yet rotated), and carries T3 under
    /// the HMAC.
    #[test]
    fn answered_and_sealed_with_the_key_the_packet_came_with() {
        let mut r = reflector(ReflectorKeys::for_others(Some(keys(&[K2, K1]))));
        for (seq, key, only) in [(0, K2, K2), (1, K1, K1)] {
            let out = send(&mut r, addr(9), &sealed(seq, 100, key)).unwrap();
            assert_eq!(out.len(), 120);
            let got = ReflectedPacket::decode_authenticated(&out, &keys(&[only])).unwrap();
            assert_eq!((got.packet.sender_seq, got.packet.seq), (seq, seq));
            assert_eq!((got.packet.ssid, got.packet.sender_ttl), (7, 60));
            assert_eq!(got.packet.timestamp.to_unix_ns(), 5);
        }
        assert_eq!(r.take_counters().reflected, 2);
    }

    #[test]
    fn what_does_not_authenticate_is_counted_by_reason_and_opens_no_session() {
        let mut k = ReflectorKeys::default();
        k.add_source(addr(1).ip(), keys(&[K1]));
        let mut r = reflector(k);
        // An unauthenticated packet: too short for the mode.
        let err = send(&mut r, addr(1), &test_packet(0, 44)).unwrap_err();
        assert!(matches!(err, ReflectError::Malformed(_)), "{err}");
        // Long enough, but no HMAC; another key's HMAC.
        for bad in [test_packet(0, 112), sealed(0, 100, K2)] {
            let err = send(&mut r, addr(1), &bad).unwrap_err();
            assert!(matches!(err, ReflectError::Unauthenticated(_)), "{err}");
        }
        // A source with no key: refused, even with a packet another source's key seals.
        let stranger = SocketAddr::from(([198, 18, 0, 9], 1));
        let err = send(&mut r, stranger, &sealed(0, 100, K1)).unwrap_err();
        assert_eq!(err, ReflectError::NoKey(stranger.ip()));
        assert!(err
            .to_string()
            .contains("no key is configured for 198.18.0.9"));
        assert_eq!(r.session_count(), 0);
        let c = r.take_counters();
        assert_eq!((c.malformed, c.unauthenticated, c.reflected), (1, 3, 0));
    }

    /// A captured test packet sent again is not answered, and does not move the
    /// reflector's sequence number (which would tell the sender a reverse loss).
    #[test]
    fn a_replay_is_refused_and_the_reflector_sequence_does_not_move() {
        let mut r = reflector(ReflectorKeys::for_others(Some(keys(&[K1]))));
        let first = sealed(0, 100, K1);
        send(&mut r, addr(1), &first).unwrap();
        let err = send(&mut r, addr(1), &first).unwrap_err();
        assert_eq!(err, ReflectError::Replayed(Replay::Duplicate(0)));
        let out = send(&mut r, addr(1), &sealed(1, 100, K1)).unwrap();
        let got = ReflectedPacket::decode_authenticated(&out, &keys(&[K1])).unwrap();
        assert_eq!(got.packet.seq, 1, "the replay took no sequence number");
        // Stale: sent 11 s before the session's latest.
        send(&mut r, addr(1), &sealed(5, 112, K1)).unwrap();
        let err = send(&mut r, addr(1), &sealed(2, 101, K1)).unwrap_err();
        assert!(matches!(
            err,
            ReflectError::Replayed(Replay::Stale { stale_s: 11 })
        ));
        let c = r.take_counters();
        assert_eq!((c.reflected, c.replayed), (3, 2));
    }

    /// Two peers behind one address with different keys: each is answered.
    #[test]
    fn peers_sharing_an_address_keep_their_keys() {
        let mut k = ReflectorKeys::default();
        k.add_source(addr(1).ip(), keys(&[K1]));
        k.add_source(addr(1).ip(), keys(&[K2]));
        let mut r = reflector(k);
        send(&mut r, addr(1), &sealed(0, 100, K1)).unwrap();
        let out = send(&mut r, addr(2), &sealed(0, 100, K2)).unwrap();
        ReflectedPacket::decode_authenticated(&out, &keys(&[K2])).unwrap();
    }
}

#[test]
fn session_table_is_bounded_and_evicts_idle() {
    let limits = ReflectorLimits {
        max_sessions: 2,
        idle_timeout_ns: 1_000,
        ..ReflectorLimits::default()
    };
    let mut r = Reflector::new(limits);
    let est = ErrorEstimate::from_error_ns(1, false);
    let mut out = Vec::new();
    let req = test_packet(0, 44);
    r.handle_datagram(&Arrival::new(Moment::at(0), addr(1)), est, &req, &mut out)
        .unwrap();
    r.handle_datagram(&Arrival::new(Moment::at(500), addr(2)), est, &req, &mut out)
        .unwrap();
    // Both live: a third is refused.
    assert_eq!(
        r.handle_datagram(&Arrival::new(Moment::at(900), addr(3)), est, &req, &mut out)
            .unwrap_err(),
        ReflectError::SessionTableFull(2)
    );
    // Session 1 idle for >= 1 us: evicted, the newcomer gets a place.
    r.handle_datagram(
        &Arrival::new(Moment::at(1_200), addr(3)),
        est,
        &req,
        &mut out,
    )
    .unwrap();
    assert_eq!(r.session_count(), 2);
    assert_eq!(r.take_counters().refused, 1);
}

/// A flood from one address is answered at its limit, counted, and costs the
/// well-behaved sender at another address nothing: its session's sequence has no gaps.
#[test]
fn a_flood_is_limited_per_source_and_another_sender_is_answered() {
    let limits = ReflectorLimits {
        rate: RateLimits {
            per_source: 1_000,
            total: 10_000,
        },
        ..ReflectorLimits::default()
    };
    let mut r = Reflector::new(limits);
    let est = ErrorEstimate::from_error_ns(1, false);
    let mut out = Vec::new();
    let flood: SocketAddr = ([127, 0, 0, 2], 9).into();
    let (mut flood_in, mut flood_out) = (0, 0);
    let mut good_seqs = Vec::new();
    // One second: the flood every 10 us (100k/s, 300-byte packets), the sender every 5 ms.
    for i in 0..100_000u32 {
        let at = Moment::at(1_000_000_000 + u64::from(i) * 10_000);
        let req = test_packet(i, 300);
        flood_in += req.len();
        if r.handle_datagram(&Arrival::new(at, flood), est, &req, &mut out)
            .is_ok()
        {
            flood_out += out.len();
        }
        if i % 500 == 0 {
            let req = test_packet(i / 500, 44);
            r.handle_datagram(&Arrival::new(at, addr(1)), est, &req, &mut out)
                .expect("the good sender is answered");
            good_seqs.push(ReflectedPacket::decode(&out).unwrap().seq);
        }
    }
    assert_eq!(good_seqs, (0..200).collect::<Vec<u32>>());
    // 1,000/s and a burst of 100.
    assert_eq!(flood_out, 1_099 * 300);
    assert!(flood_out * 90 < flood_in, "{flood_out} of {flood_in} bytes");
    let c = r.take_counters();
    assert_eq!(
        (c.reflected, c.rate_limited),
        (1_099 + 200, 100_000 - 1_099)
    );
    // A limited packet opened no session.
    assert_eq!(r.session_count(), 2);
}
