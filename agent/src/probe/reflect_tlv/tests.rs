use proptest::prelude::*;

use super::*;
use crate::wire::stamp_tlv::put;

const KEY: &[u8] = b"0123456789abcdef";

fn cx(key: Option<&StampKey>) -> Context<'_> {
    Context {
        from: "198.18.0.1:40000".parse().unwrap(),
        to: Some("198.18.0.2".parse().unwrap()),
        local_port: 862,
        // DSCP 10 (AF11) and ECN CE as received.
        tos: Some(10 << 2 | 0b11),
        received: 7,
        transmitted: 6,
        previous: Some((5, 0x0102_0304_0506_0708)),
        synchronized: true,
        key,
    }
}

/// A test packet: `base` octets of sequence number 0x0a0b0c0d then zeroes, and `tlvs`.
fn packet(base: usize, tlvs: &[(u8, u8, Vec<u8>)]) -> Vec<u8> {
    let mut buf = vec![0; base];
    buf[..4].copy_from_slice(&[0x0a, 0x0b, 0x0c, 0x0d]);
    for (flags, kind, value) in tlvs {
        put(&mut buf, *flags, *kind, value);
    }
    buf
}

/// The reply to `request`: its base as the reflector wrote it (reflector sequence 3), the
/// TLV area copied, then answered.
fn reflect(request: &[u8], base: usize, cx: &Context) -> (Vec<u8>, Answer) {
    let mut reply = request.to_vec();
    reply[..base].fill(0);
    reply[..4].copy_from_slice(&3u32.to_be_bytes());
    let answer = answer(request, &mut reply, base, cx);
    (reply, answer)
}

fn tlvs(buf: &[u8], base: usize) -> Vec<Tlv> {
    walk(buf, base)
        .map(|s| match s {
            Step::Tlv(t) => t,
            Step::Truncated(at) => panic!("truncated at {at}"),
        })
        .collect()
}

fn location_request() -> Vec<u8> {
    let mut v = vec![0; 4];
    for (k, len) in [
        (sub::DESTINATION_IP, 16),
        (sub::SOURCE_IP, 16),
        (sub::SOURCE_MAC, 8),
        (77, 4),
    ] {
        v.extend_from_slice(&[U, k, 0, len]);
        v.extend(std::iter::repeat_n(0, usize::from(len)));
    }
    v
}

/// Every TLV RFC 8972 defines, as a sender sends it (U set, values zero but S_TxC and
/// DSCP1), answered field by field; the reply as long as the test packet.
#[test]
fn each_tlv_is_answered_in_place() {
    let request = packet(
        44,
        &[
            (U, kind::TIMESTAMP_INFO, vec![0; 4]),
            // DSCP1 = 46 (EF) asked for the reply.
            (U, kind::CLASS_OF_SERVICE, vec![46 << 2, 0, 0, 0]),
            (
                U,
                kind::DIRECT_MEASUREMENT,
                [9u32.to_be_bytes(), [0; 4], [0; 4]].concat(),
            ),
            (U, kind::FOLLOW_UP, vec![0; 16]),
            (U, kind::LOCATION, location_request()),
            (U, kind::ACCESS_REPORT, vec![0x10, 1, 0, 0]),
            (U, 200, vec![1, 2, 3]),
            (U, kind::EXTRA_PADDING, vec![0x5a; 30]),
        ],
    );
    let (reply, answer) = reflect(&request, 44, &cx(None));
    assert_eq!(reply.len(), request.len());
    assert_eq!(
        answer,
        Answer {
            dscp: Some(46),
            follow_up: true
        }
    );
    let got = tlvs(&reply, 44);
    let flags: Vec<(u8, u8)> = got.iter().map(|t| (t.kind, t.flags)).collect();
    assert_eq!(
        flags,
        vec![
            (3, 0),
            (4, 0),
            (5, 0),
            (7, 0),
            (2, 0),
            (6, 0),
            (200, U),
            (1, 0)
        ],
        "known types answered (flags cleared), the unknown one U"
    );
    let v = |i: usize| &reply[got[i].value()];
    // Synchronized to NTP, both timestamps software.
    assert_eq!(v(0), &[1, 2, 1, 2]);
    // DSCP1 46 kept; DSCP2 10 and ECN 3 as received; RP 0; reserved zero.
    // DSCP 10 = 0b001010: its top two bits end octet 0, its low four start octet 1.
    assert_eq!(v(1), &[46 << 2, 0b1010 << 4 | 3 << 2, 0, 0]);
    assert_eq!(
        v(2),
        &[[0, 0, 0, 9], [0, 0, 0, 7], [0, 0, 0, 6]].concat()[..]
    );
    assert_eq!(
        v(3),
        &[
            [0, 0, 0, 5].as_slice(),
            &[1, 2, 3, 4, 5, 6, 7, 8],
            &[2, 0, 0, 0]
        ]
        .concat()[..]
    );
    // Location: our port, theirs; 4 -> 5 (IPv4 destination), 7 -> 8 (IPv4 source),
    // 1 -> 3 zeroed (no MAC known), the unknown sub-TLV U.
    let loc = v(4);
    assert_eq!(
        &loc[..4],
        &[862u16.to_be_bytes(), 40000u16.to_be_bytes()].concat()[..]
    );
    assert_eq!(&loc[4..8], &[0, sub::DESTINATION_IPV4, 0, 16]);
    assert_eq!(&loc[8..12], &[198, 18, 0, 2]);
    assert!(loc[12..24].iter().all(|b| *b == 0));
    assert_eq!(&loc[24..28], &[0, sub::SOURCE_IPV4, 0, 16]);
    assert_eq!(&loc[28..32], &[198, 18, 0, 1]);
    assert_eq!(&loc[44..48], &[0, sub::SOURCE_EUI64, 0, 8]);
    assert_eq!(&loc[56..60], &[U, 77, 0, 4]);
    assert_eq!(v(5), &[0x10, 1, 0, 0]);
    assert_eq!(v(6), &[1, 2, 3]);
    assert_eq!(v(7), &[0x5a; 30], "padding echoed");
}

/// IPv6 sources and an unknown destination; an unsynchronized clock; no TOS seen.
#[test]
fn ipv6_unknown_destination_and_a_free_running_clock() {
    let request = packet(
        44,
        &[
            (U, kind::LOCATION, location_request()),
            (U, kind::TIMESTAMP_INFO, vec![0; 4]),
            (U, kind::CLASS_OF_SERVICE, vec![0; 4]),
        ],
    );
    let c = Context {
        from: "[2001:db8::1]:5".parse().unwrap(),
        to: None,
        tos: None,
        synchronized: false,
        ..cx(None)
    };
    let (reply, answer) = reflect(&request, 44, &c);
    let got = tlvs(&reply, 44);
    let loc = &reply[got[0].value()];
    assert_eq!(
        &loc[4..8],
        &[0, sub::DESTINATION_IP, 0, 16],
        "not known: zeroed"
    );
    assert!(loc[8..24].iter().all(|b| *b == 0));
    assert_eq!(&loc[24..28], &[0, sub::SOURCE_IPV6, 0, 16]);
    assert_eq!(
        &loc[28..44],
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
    );
    assert_eq!(&reply[got[1].value()], &[5, 2, 5, 2]);
    assert_eq!(&reply[got[2].value()], &[0, 0, 0, 0]);
    assert_eq!(answer.dscp, Some(0));
}

/// A known type with a wrong length is M, and what follows is copied as it came (the
/// sender's U kept, nothing answered); a TLV running past the packet is M.
#[test]
fn malformed_stops_the_answer_and_copies_the_rest() {
    let request = packet(
        44,
        &[
            (U, kind::TIMESTAMP_INFO, vec![0; 4]),
            (U, kind::DIRECT_MEASUREMENT, vec![0; 8]),
            (U, kind::CLASS_OF_SERVICE, vec![46 << 2, 0, 0, 0]),
        ],
    );
    let (reply, answer) = reflect(&request, 44, &cx(None));
    let got = tlvs(&reply, 44);
    assert_eq!((got[0].flags, got[1].flags, got[2].flags), (0, M, U));
    assert_eq!(
        &reply[got[2].at..],
        &request[got[2].at..],
        "copied as it came"
    );
    assert_eq!(answer.dscp, None);
    let mut cut = packet(44, &[(U, kind::TIMESTAMP_INFO, vec![0; 4])]);
    cut.extend_from_slice(&[U, kind::FOLLOW_UP, 0, 16, 1, 2]);
    let (reply, _) = reflect(&cut, 44, &cx(None));
    assert_eq!(reply[52], M);
    assert_eq!(
        &reply[56..],
        &[1, 2],
        "nothing past the packet is read or written"
    );
}

fn hmac_tlv(key: &StampKey, seq: &[u8], before: &[u8]) -> Vec<u8> {
    key.tag_of(&[seq, before]).to_vec()
}

/// Authenticated mode: the HMAC TLV is checked over the sequence number and the TLVs
/// before it, and computed again over the reply's (the reflector's sequence number, the
/// answered values and flags); a wrong one, a missing one, or one not last but for
/// padding makes every TLV I and nothing is answered.
#[test]
fn the_hmac_tlv_is_checked_and_made_again() {
    let key = StampKey::new(KEY).unwrap();
    let mut request = packet(112, &[(U, kind::DIRECT_MEASUREMENT, vec![0; 12])]);
    let tag = hmac_tlv(&key, &request[..4], &request[112..]);
    put(&mut request, U, kind::HMAC, &tag);
    put(&mut request, U, kind::EXTRA_PADDING, &[0; 8]);
    let (reply, _) = reflect(&request, 112, &cx(Some(&key)));
    let got = tlvs(&reply, 112);
    assert_eq!(
        got.iter().map(|t| t.flags).collect::<Vec<_>>(),
        vec![0, 0, 0]
    );
    assert_eq!(&reply[got[0].value()][4..], &[0, 0, 0, 7, 0, 0, 0, 6]);
    let want = key.tag_of(&[&reply[..4], &reply[112..got[1].at]]);
    assert_eq!(
        &reply[got[1].value()],
        &want,
        "over the reply's own sequence number and TLVs"
    );
    assert_ne!(&reply[got[1].value()], &request[got[1].value()]);

    let mut forged = request.clone();
    forged[112 + HEADER + 3] ^= 1;
    let wrong_key = StampKey::new(b"fedcba9876543210").unwrap();
    let misplaced = {
        let mut p = packet(112, &[]);
        let tag = hmac_tlv(&key, &p[..4], &[]);
        put(&mut p, U, kind::HMAC, &tag);
        put(&mut p, U, kind::TIMESTAMP_INFO, &[0; 4]);
        p
    };
    let missing = packet(112, &[(U, kind::TIMESTAMP_INFO, vec![0; 4])]);
    for (what, p, k) in [
        ("a changed value", &forged, &key),
        ("another key", &request, &wrong_key),
        ("not last", &misplaced, &key),
        ("none in authenticated mode", &missing, &key),
    ] {
        let (reply, answer) = reflect(p, 112, &cx(Some(k)));
        // Copied as it came, I added to every flags octet: nothing answered.
        let mut want = p.to_vec();
        for t in tlvs(p, 112) {
            want[t.at] |= I;
        }
        assert_eq!(&reply[112..], &want[112..], "{what}");
        assert_eq!(answer, Answer::default(), "{what}");
    }
    // Unauthenticated mode, no key: an HMAC TLV cannot be checked.
    let mut open = packet(44, &[(U, kind::TIMESTAMP_INFO, vec![0; 4])]);
    put(&mut open, U, kind::HMAC, &[0; 16]);
    let (reply, _) = reflect(&open, 44, &cx(None));
    assert!(tlvs(&reply, 44).iter().all(|t| t.flags & I != 0));
    // Padding alone needs no HMAC TLV in authenticated mode.
    let padded = packet(112, &[(U, kind::EXTRA_PADDING, vec![0; 20])]);
    let (reply, _) = reflect(&padded, 112, &cx(Some(&key)));
    assert_eq!(tlvs(&reply, 112)[0].flags, 0);
}

proptest! {
    /// Whatever follows the base, the answer never panics, never changes the length, and
    /// never writes the base.
    #[test]
    fn any_tail_is_answered_in_place(
        tail in proptest::collection::vec(any::<u8>(), 0..600),
        auth in any::<bool>(),
    ) {
        let key = StampKey::new(KEY).unwrap();
        let base = if auth { 112 } else { 44 };
        let mut request = vec![0; base];
        request.extend_from_slice(&tail);
        let (reply, _) = reflect(&request, base, &cx(auth.then_some(&key)));
        prop_assert_eq!(reply.len(), request.len());
        prop_assert_eq!(&reply[4..base], &vec![0; base - 4][..]);
    }
}
