//! The probers held to their promises in the in-memory link with a virtual clock (`sim`):
//! loss and its direction, duplicates, reordering, late replies, clock steps, authenticated
//! mode, RFC 8972 TLVs read back, and what is unmatched or malformed.

use super::sim::{Pair, Stamp};
use super::*;
use crate::wire::stamp_auth::AUTH_LEN;
use crate::wire::{ReflectedPacket, Timestamp};

const MS: u64 = 1_000_000;

fn config() -> SenderConfig {
    SenderConfig {
        interval_ns: 10 * MS,
        timeout_ns: 1_000 * MS,
        packet_len: 44,
        dscp: 0,
    }
}

fn stamp(pair: Pair) -> Vec<Event> {
    pair.run(Sender::new(config(), 0), Stamp::default(), 100)
}

#[derive(Default, Debug, PartialEq)]
struct Tally {
    sent: u64,
    replies: u64,
    lost: u64,
    forward: u64,
    reverse: u64,
    unattributed: u64,
    dup: u64,
    late: u64,
    reordered: u64,
    other: u64,
}

fn tally(events: &[Event]) -> Tally {
    let mut t = Tally::default();
    for e in events {
        match e {
            Event::Sent { .. } => t.sent += 1,
            Event::Reply(r) => {
                t.replies += 1;
                t.reordered += u64::from(r.reordered);
            }
            Event::Lost { .. } | Event::Abandoned { .. } => t.lost += 1,
            Event::LossDirection {
                forward,
                reverse,
                unattributed,
                ..
            } => {
                t.forward += forward;
                t.reverse += reverse;
                t.unattributed += unattributed;
            }
            Event::Duplicate { .. } => t.dup += 1,
            Event::Late { .. } => t.late += 1,
            Event::Malformed
            | Event::Unmatched
            | Event::Unauthenticated
            | Event::Rtt { .. }
            | Event::ClockMoved { .. }
            | Event::Skipped { .. } => t.other += 1,
        }
    }
    t
}

fn replies(events: &[Event]) -> Vec<Reply> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Reply(r) => Some(*r),
            _ => None,
        })
        .collect()
}

#[test]
fn asymmetric_delay_is_measured_exactly_and_dwell_excluded() {
    let events = stamp(Pair {
        forward_delay_ns: 3 * MS,
        reverse_delay_ns: MS,
        dwell_ns: 250_000,
        ..Pair::default()
    });
    let t = tally(&events);
    assert_eq!((t.sent, t.replies, t.lost), (100, 100, 0));
    for r in replies(&events) {
        // NTP timestamps carry 2^-32 s; conversions round to within 1 ns each.
        assert!(r.rtt_ns.unwrap().abs_diff(4 * MS) <= 2, "{r:?}");
        let (f, b) = r.one_way.unwrap();
        assert!(f.abs_diff(3 * MS as i64) <= 2, "{r:?}");
        assert!(b.abs_diff(MS as i64) <= 2, "{r:?}");
        assert!(!r.reordered);
        assert!(r.jitter_forward_ns < 3.0 && r.jitter_reverse_ns < 3.0);
        if r.seq > 0 {
            let (f, b) = r.ipdv[0].unwrap();
            assert!(f.abs() <= 2 && b.abs() <= 2, "{r:?}");
        }
        assert_eq!(r.ipdv[1], None);
        assert!(r.synchronized);
        assert!(r.clock_error_ns >= 2_000 && r.clock_error_ns < 2_100);
    }
}

#[test]
fn loss_is_split_by_direction_exactly() {
    let events = stamp(Pair {
        forward_delay_ns: MS,
        reverse_delay_ns: MS,
        // Runs of losses of both kinds, mixed runs, and a loss at the very start.
        drop_forward: [0, 10, 11, 50, 71].into_iter().collect(),
        drop_reverse: [1, 20, 60, 61, 70, 72].into_iter().collect(),
        ..Pair::default()
    });
    let t = tally(&events);
    assert_eq!(t.sent, 100);
    assert_eq!(t.lost, 11);
    assert_eq!(t.replies, 89);
    assert_eq!((t.forward, t.reverse), (5, 6));
}

#[test]
fn a_run_the_reflector_counter_cannot_explain_is_unattributed() {
    // The reflector restarts while 30..40 are dropped on the way out: its counter starts
    // again at 0, below the anchor. Today's reverse-by-clamping would call all ten
    // reverse; they are unattributed, and the runs around them stay exact.
    let events = stamp(Pair {
        forward_delay_ns: MS,
        reverse_delay_ns: MS,
        drop_forward: (5..7).chain(30..40).collect(),
        drop_reverse: [60, 61].into_iter().collect(),
        far_restart_at: Some(35),
        ..Pair::default()
    });
    let t = tally(&events);
    assert_eq!(
        (t.lost, t.forward, t.reverse, t.unattributed),
        (14, 2, 2, 10)
    );
    let runs: Vec<(u32, u32, u64)> = events
        .iter()
        .filter_map(|e| match *e {
            Event::LossDirection {
                first,
                last,
                unattributed,
                ..
            } => Some((first, last, unattributed)),
            _ => None,
        })
        .collect();
    assert_eq!(runs, [(5, 6, 0), (30, 39, 10), (60, 61, 0)]);
}

#[test]
fn a_probe_is_lost_at_its_own_timeout_not_before() {
    let pair = Pair {
        forward_delay_ns: MS,
        reverse_delay_ns: MS,
        drop_forward: [10].into_iter().collect(),
        ..Pair::default()
    };
    let timed = pair.run_timed(Sender::new(config(), 0), Stamp::default(), 100);
    let sent = timed
        .iter()
        .find(|(_, e)| *e == Event::Sent { seq: 10 })
        .unwrap()
        .0;
    let lost = timed
        .iter()
        .find(|(_, e)| *e == Event::Lost { seq: 10 })
        .unwrap()
        .0;
    assert_eq!(
        lost - sent,
        config().timeout_ns,
        "declared at exactly its timeout"
    );
}

#[test]
fn duplicates_reordering_and_late_replies_are_separate() {
    let events = stamp(Pair {
        forward_delay_ns: MS,
        reverse_delay_ns: MS,
        duplicate_reverse: [30].into_iter().collect(),
        // 15 ms extra: the reply to 40 lands after the reply to 41.
        extra_reverse_delay_ns: [(40, 15 * MS), (70, 1_500 * MS)].into_iter().collect(),
        ..Pair::default()
    });
    let t = tally(&events);
    assert_eq!(
        t,
        Tally {
            sent: 100,
            replies: 99,
            lost: 1,
            forward: 0,
            reverse: 1,
            unattributed: 0,
            dup: 1,
            late: 1,
            reordered: 1,
            other: 0,
        }
    );
    let r = replies(&events);
    let r40 = r.iter().find(|r| r.seq == 40).unwrap();
    assert!(r40.reordered);
    assert!(r40.rtt_ns.unwrap().abs_diff(17 * MS) <= 2);
    // IPDV by sequence, completed when the late reply arrives:
    // D(40) - D(39) = +15 ms back, and D(41) - D(40) = -15 ms back.
    let [before, after] = r40.ipdv.map(Option::unwrap);
    assert!(before.0.abs() <= 2 && before.1.abs_diff(15 * MS as i64) <= 2);
    assert!(after.0.abs() <= 2 && after.1.abs_diff(-15 * MS as i64) <= 2);
    let r41 = r.iter().find(|r| r.seq == 41).unwrap();
    assert_eq!(r41.ipdv, [None, None], "40 was not answered yet");
    let ipdv_samples: usize = r.iter().map(|r| r.ipdv.iter().flatten().count()).sum();
    // 100 probes, one lost (70): pairs (69,70) and (70,71) are missing.
    assert_eq!(ipdv_samples, 99 - 2);
}

#[test]
fn a_probe_duplicated_on_the_way_out_is_answered_twice_and_counted_once() {
    let events = stamp(Pair {
        forward_delay_ns: MS,
        reverse_delay_ns: MS,
        duplicate_forward: [5, 6].into_iter().collect(),
        drop_forward: [20].into_iter().collect(),
        ..Pair::default()
    });
    let t = tally(&events);
    assert_eq!((t.sent, t.replies, t.dup, t.lost), (100, 99, 2, 1));
    // The reflector counted both copies, so its sequence ran ahead by two; the loss at 20
    // is still told to be forward (the reflector never saw it).
    assert_eq!((t.forward, t.reverse), (1, 0));
}

fn stamp_keys(secret: &[u8]) -> std::sync::Arc<crate::wire::stamp_auth::StampKeys> {
    use crate::wire::stamp_auth::{StampKey, StampKeys};
    std::sync::Arc::new(StampKeys::new(vec![StampKey::new(secret).unwrap()]).unwrap())
}

/// Authenticated mode measures what unauthenticated mode does; a test packet copied on
/// the way out is a replay there: refused by the reflector (counted), so the sender
/// sees no duplicate and the reflector's sequence number does not run ahead.
#[test]
fn authenticated_mode_measures_the_same_and_refuses_forward_copies() {
    let pair = Pair {
        forward_delay_ns: 3 * MS,
        reverse_delay_ns: MS,
        duplicate_forward: [5, 6].into_iter().collect(),
        drop_forward: [20].into_iter().collect(),
        drop_reverse: [30].into_iter().collect(),
        ..Pair::default()
    };
    let keys = stamp_keys(b"0123456789abcdef");
    let mut far = Stamp::keyed(ReflectorKeys::for_others(Some(keys.clone())));
    let config = SenderConfig {
        packet_len: 112,
        ..config()
    };
    let events = pair.run(
        Sender::new(config, 0).authenticated(Some(keys)),
        &mut far,
        100,
    );
    let t = tally(&events);
    assert_eq!((t.sent, t.replies, t.dup, t.lost), (100, 98, 0, 2));
    assert_eq!((t.forward, t.reverse, t.unattributed), (1, 1, 0));
    let c = far.counters();
    assert_eq!((c.reflected, c.replayed, c.unauthenticated), (99, 2, 0));
    for r in replies(&events) {
        assert_eq!(r.rtt_ns, Some(4 * MS));
        assert_eq!(r.one_way, Some((3 * MS as i64, MS as i64)));
    }
}

/// A Class of Service TLV goes when there is room for it (and, authenticated, for the HMAC
/// TLV that vouches for it): the reflector answers it in both modes and the sender
/// reads it back (the in-memory link has no IP header, so DSCP 46 arrives as 0: re-marked
/// forward); a reply whose TLVs the HMAC TLV does not vouch for is measured but not read.
#[test]
fn class_of_service_is_read_in_both_modes_and_only_when_vouched_for() {
    let keys = stamp_keys(b"0123456789abcdef");
    for (keyed, len, read) in [
        (false, 44, false),
        (false, 52, true),
        (true, 112, false),
        (true, 139, false),
        (true, 140, true),
    ] {
        let config = SenderConfig {
            packet_len: len,
            dscp: 46,
            ..config()
        };
        let (mut far, sender) = match keyed {
            false => (Stamp::default(), Sender::new(config, 0)),
            true => (
                Stamp::keyed(ReflectorKeys::for_others(Some(keys.clone()))),
                Sender::new(config, 0).authenticated(Some(keys.clone())),
            ),
        };
        let events = Pair::default().run(sender, &mut far, 10);
        let seen: Vec<_> = replies(&events).iter().map(|r| r.dscp).collect();
        assert_eq!(seen.len(), 10, "{keyed} {len}");
        let want = read.then_some(sender::DscpSeen {
            sent: 46,
            at_reflector: 0,
            reflected: 46,
            back: None,
            ecn_at_reflector: 0,
            ecn_back: None,
        });
        assert!(seen.iter().all(|d| *d == want), "{keyed} {len}: {seen:?}");
    }
    // A reflector that answers the TLVs but whose HMAC TLV another key made.
    let config = SenderConfig {
        packet_len: 140,
        dscp: 46,
        ..config()
    };
    let mut sender = Sender::new(config, 0).authenticated(Some(keys.clone()));
    let mut far = Reflector::new(ReflectorLimits::default());
    far.set_keys(ReflectorKeys::for_others(Some(keys.clone())));
    let mut out = Vec::new();
    assert!(sender.poll_transmit(
        Moment::at(0),
        ErrorEstimate::from_error_ns(1, false),
        &mut out
    ));
    let mut reply = Vec::new();
    let seal = far
        .handle_datagram(
            &Arrival::new(Moment::at(MS), "127.0.0.1:9".parse().unwrap()),
            ErrorEstimate::from_error_ns(1, false),
            &out,
            &mut reply,
        )
        .unwrap();
    let hmac_value = AUTH_LEN + 8 + 4;
    reply[hmac_value] ^= 1;
    seal.stamp_transmit(&mut reply, Timestamp::from_unix_ns(MS));
    sender.handle_input(Moment::at(2 * MS), None, &reply);
    let got: Vec<_> = std::iter::from_fn(|| sender.poll_event()).collect();
    let r = replies(&got);
    assert_eq!(r.len(), 1, "measured: {got:?}");
    assert_eq!(r[0].dscp, None);
}

/// A sender and a reflector holding different keys: every probe is refused and
/// counted at the reflector, and lost at the sender; nothing is measured.
#[test]
fn different_keys_are_refused_and_counted_not_measured() {
    let mut far = Stamp::keyed(ReflectorKeys::for_others(Some(stamp_keys(
        b"0123456789abcdef",
    ))));
    let config = SenderConfig {
        packet_len: 112,
        ..config()
    };
    let sender = Sender::new(config, 0).authenticated(Some(stamp_keys(b"fedcba9876543210")));
    let t = tally(&Pair::default().run(sender, &mut far, 20));
    assert_eq!((t.sent, t.replies, t.lost), (20, 0, 20));
    let c = far.counters();
    assert_eq!((c.reflected, c.unauthenticated), (0, 20));
}

#[test]
fn a_reply_sealed_with_another_key_is_unauthenticated() {
    use crate::wire::stamp_auth::StampKey;
    let (k1, k2) = (b"0123456789abcdef", b"fedcba9876543210");
    let config = SenderConfig {
        packet_len: 112,
        ..config()
    };
    let mut s = Sender::new(config, 0).authenticated(Some(stamp_keys(k1)));
    let est = ErrorEstimate::from_error_ns(1, false);
    let mut buf = Vec::new();
    assert!(s.poll_transmit(Moment::at(0), est, &mut buf));
    assert_eq!(buf.len(), 112);
    let mut r = Reflector::new(ReflectorLimits::default());
    r.set_keys(ReflectorKeys::for_others(Some(stamp_keys(k1))));
    let mut reply = Vec::new();
    let from = ([127, 0, 0, 1], 1).into();
    let seal = r
        .handle_datagram(&Arrival::new(Moment::at(10), from), est, &buf, &mut reply)
        .unwrap();
    seal.stamp_transmit(&mut reply, Timestamp::from_unix_ns(11));
    let mut forged = reply.clone();
    let t3 = Timestamp::from_unix_ns(12);
    ReflectedPacket::stamp_transmit_authenticated(&mut forged, t3, &StampKey::new(k2).unwrap());
    s.handle_input(Moment::at(20), None, &forged);
    s.handle_input(Moment::at(20), None, &reply[..100]);
    s.handle_input(Moment::at(20), None, &reply);
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        matches!(
            events[..],
            [
                Event::Sent { seq: 0 },
                Event::Unauthenticated,
                Event::Malformed,
                Event::Reply(_)
            ]
        ),
        "{events:?}"
    );
}

#[test]
fn a_wall_clock_step_keeps_round_trips_and_drops_one_way_samples() {
    // The sender's wall clock jumps 500 ms ahead at t = 200.5 ms, while probes 19 and 20
    // (sent at 190 and 200 ms) are on the way: their round trips stay exact, their
    // one-way delays are discarded and counted.
    let pair = Pair {
        forward_delay_ns: 2 * MS,
        reverse_delay_ns: 2 * MS,
        sender_wall_step: Some((200 * MS + MS / 2, 500 * MS as i64)),
        ..Pair::default()
    };
    let config = SenderConfig {
        interval_ns: 10 * MS,
        timeout_ns: 100 * MS,
        packet_len: 44,
        dscp: 0,
    };
    let events = pair.run(Sender::new(config, 0), Stamp::default(), 40);
    let t = tally(&events);
    assert_eq!((t.sent, t.replies, t.lost, t.late), (40, 40, 0, 0));
    let r = replies(&events);
    for reply in &r {
        assert!(reply.rtt_ns.unwrap().abs_diff(4 * MS) <= 2, "{reply:?}");
    }
    let stepped: Vec<u32> = r
        .iter()
        .filter(|r| r.one_way.is_none())
        .map(|r| r.seq)
        .collect();
    assert_eq!(stepped, vec![20]);
    // Probe 19 was answered at 194 ms, before the step: untouched. After the step the
    // clocks disagree by 500 ms and one-way delay says so (clamped at 0 forward).
    let later = r.iter().find(|r| r.seq == 30).unwrap();
    assert_eq!(later.one_way.unwrap().1, 502 * MS as i64);
    // IPDV never spans the step: the pairs (19, 20) and (20, 21) are missing.
    let ipdv: usize = r.iter().map(|r| r.ipdv.iter().flatten().count()).sum();
    assert_eq!(ipdv, 39 - 2);
}

#[test]
fn no_ipdv_spans_a_wall_clock_step_between_two_sends() {
    // The step lands at 206 ms, when no probe is out (20 was answered at 204, 21 leaves
    // at 210): every reply keeps its one-way delays, but the pair (20, 21) would be an
    // IPDV of the step's 500 ms. It is not formed; every other pair is 0.
    let pair = Pair {
        forward_delay_ns: 2 * MS,
        reverse_delay_ns: 2 * MS,
        sender_wall_step: Some((206 * MS, 500 * MS as i64)),
        ..Pair::default()
    };
    let config = SenderConfig {
        interval_ns: 10 * MS,
        timeout_ns: 100 * MS,
        packet_len: 44,
        dscp: 0,
    };
    let r = replies(&pair.run(Sender::new(config, 0), Stamp::default(), 40));
    assert!(r.iter().all(|r| r.one_way.is_some()));
    let ipdv: Vec<(i64, i64)> = r
        .iter()
        .flat_map(|r| r.ipdv.iter().flatten().copied())
        .collect();
    assert_eq!(ipdv.len(), 39 - 1, "the pair across the step is missing");
    assert!(
        ipdv.iter().all(|(f, b)| f.abs() <= 2 && b.abs() <= 2),
        "{ipdv:?}"
    );
}

#[test]
fn a_reflector_clock_step_inside_its_dwell_records_no_round_trip() {
    // The reflector holds each probe 1 ms; its wall clock jumps 10 ms forward at 102.5 ms,
    // inside probe 10's dwell (sent at 100 ms, received at 102, answered at 103). That
    // reply claims an 11 ms dwell in a 5 ms round trip: no RTT and no one-way delays,
    // where clipping the dwell made an RTT of 0. Every other round trip stays exact.
    let pair = Pair {
        forward_delay_ns: 2 * MS,
        reverse_delay_ns: 2 * MS,
        dwell_ns: MS,
        far_wall_step: Some((102 * MS + MS / 2, 10 * MS as i64)),
        ..Pair::default()
    };
    let config = SenderConfig {
        interval_ns: 10 * MS,
        timeout_ns: 100 * MS,
        packet_len: 44,
        dscp: 0,
    };
    let events = pair.run(Sender::new(config, 0), Stamp::default(), 20);
    let t = tally(&events);
    assert_eq!((t.sent, t.replies, t.lost), (20, 20, 0));
    let r = replies(&events);
    let without: Vec<u32> = r
        .iter()
        .filter(|r| r.rtt_ns.is_none())
        .map(|r| r.seq)
        .collect();
    assert_eq!(without, vec![10]);
    assert!(r[10].one_way.is_none() && r[10].ipdv == [None, None]);
    for reply in r.iter().filter(|r| r.seq != 10) {
        assert_eq!(reply.rtt_ns, Some(4 * MS), "{reply:?}");
    }
}

#[test]
fn replies_to_no_probe_are_unmatched_and_garbage_is_malformed() {
    let mut s = Sender::new(config(), 0);
    let est = ErrorEstimate::from_error_ns(1, false);
    let mut buf = Vec::new();
    assert!(s.poll_transmit(Moment::at(0), est, &mut buf));
    let mut r = Reflector::new(ReflectorLimits::default());
    let mut reply = Vec::new();
    let from = ([127, 0, 0, 1], 1).into();
    r.handle_datagram(&Arrival::new(Moment::at(10), from), est, &buf, &mut reply)
        .unwrap();
    // Spoofed: right sequence, wrong T1.
    let mut spoofed = reply.clone();
    spoofed[35] ^= 1;
    s.handle_input(Moment::at(20), None, &spoofed);
    // Unknown sequence.
    let mut unknown = reply.clone();
    unknown[27] = 9;
    s.handle_input(Moment::at(20), None, &unknown);
    s.handle_input(Moment::at(20), None, &reply[..43]);
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert_eq!(
        events,
        vec![
            Event::Sent { seq: 0 },
            Event::Unmatched,
            Event::Unmatched,
            Event::Malformed
        ]
    );
}

/// RFC 8972: the session's SSID goes out in every test packet; a reply carrying another
/// session's is not ours, one carrying 0 (a reflector without RFC 8972) is.
#[test]
fn the_ssid_goes_out_and_another_sessions_reply_is_unmatched() {
    let mut s = Sender::new(config(), 0).with_ssid(0x1234);
    let est = ErrorEstimate::from_error_ns(1, false);
    let (mut buf, mut reply) = (Vec::new(), Vec::new());
    assert!(s.poll_transmit(Moment::at(0), est, &mut buf));
    assert_eq!(&buf[14..16], &[0x12, 0x34]);
    let mut r = Reflector::new(ReflectorLimits::default());
    let from = ([127, 0, 0, 1], 1).into();
    r.handle_datagram(&Arrival::new(Moment::at(10), from), est, &buf, &mut reply)
        .unwrap();
    assert_eq!(&reply[14..16], &[0x12, 0x34], "copied by the reflector");
    let mut other = reply.clone();
    other[15] = 0x35;
    s.handle_input(Moment::at(20), None, &other);
    let mut zeroed = reply.clone();
    zeroed[14..16].copy_from_slice(&[0, 0]);
    s.handle_input(Moment::at(20), None, &zeroed);
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        matches!(
            events[..],
            [Event::Sent { seq: 0 }, Event::Unmatched, Event::Reply(_)]
        ),
        "{events:?}"
    );
}

#[test]
fn schedule_does_not_burst_after_a_stall() {
    let mut s = Sender::new(config(), 0);
    let est = ErrorEstimate::from_error_ns(1, false);
    let mut buf = Vec::new();
    assert!(s.poll_transmit(Moment::at(0), est, &mut buf));
    assert!(!s.poll_transmit(Moment::at(5 * MS), est, &mut buf));
    // Stalled for 100 ms: one probe now, then back on an interval, not ten at once.
    assert!(s.poll_transmit(Moment::at(100 * MS), est, &mut buf));
    assert!(!s.poll_transmit(Moment::at(100 * MS), est, &mut buf));
    assert_eq!(s.poll_timeout(), Some(110 * MS));
    // The slots it skipped are counted: 20, 30, ..., 100 ms (the one due at 10 ms went
    // out late at 100), so sent + skipped is what the schedule called for by 110 ms.
    let skipped: u64 = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::Skipped { count } => Some(count),
            _ => None,
        })
        .sum();
    assert_eq!(skipped, 9);
    assert!(s.poll_transmit(Moment::at(110 * MS), est, &mut buf));
    assert_eq!(3 + skipped, 12, "slots 0, 10, ..., 110 ms");
}

#[test]
fn a_stall_shorter_than_the_catch_up_is_made_up_and_a_longer_one_skipped() {
    let fast = SenderConfig {
        interval_ns: MS,
        ..config()
    };
    let est = ErrorEstimate::from_error_ns(1, false);
    let mut buf = Vec::new();
    let skipped = |s: &mut Sender| -> u64 {
        std::iter::from_fn(|| s.poll_event())
            .filter_map(|e| match e {
                Event::Skipped { count } => Some(count),
                _ => None,
            })
            .sum()
    };
    // Stalled 8 ms at 1 ms: the probes due at 0..=8 ms all go out at 8 ms, one after
    // another, and the schedule goes on at 9 ms.
    let mut s = Sender::new(fast, 0);
    let mut sent = 0;
    while s.poll_transmit(Moment::at(8 * MS), est, &mut buf) {
        sent += 1;
    }
    assert_eq!((sent, skipped(&mut s)), (9, 0));
    assert_eq!(s.poll_timeout(), Some(9 * MS));
    // Stalled 30 ms, longer than CATCH_UP_NS: the probe due at 0 goes out now, the slots
    // at 1..=30 ms are skipped and counted.
    let mut s = Sender::new(fast, 0);
    assert!(s.poll_transmit(Moment::at(30 * MS), est, &mut buf));
    assert!(!s.poll_transmit(Moment::at(30 * MS), est, &mut buf));
    assert_eq!(skipped(&mut s), 30);
    assert_eq!(s.poll_timeout(), Some(31 * MS));
    // The bound between the two: the slot after the late one is 10 ms late.
    assert_eq!(sender::next_slot(0, MS, 10 * MS), (MS, 0));
    assert_eq!(sender::next_slot(0, MS, 11 * MS), (12 * MS, 11));
}

#[test]
fn late_wakeups_keep_the_average_rate() {
    // A timer that always fires 0.9 intervals late (tokio's 1 ms wheel at a 1 ms interval)
    // still sends one probe per interval on average.
    let mut s = Sender::new(config(), 0);
    let est = ErrorEstimate::from_error_ns(1, false);
    let mut buf = Vec::new();
    let mut sent = 0;
    let mut now = 0;
    while now < 1_000 * MS {
        let due = s.poll_timeout().unwrap();
        now = now.max(due) + 9 * MS;
        while s.poll_transmit(Moment::at(now), est, &mut buf) {
            sent += 1;
        }
    }
    assert!((99..=101).contains(&sent), "{sent} probes in 100 intervals");
}

#[test]
fn steps_are_told_from_slewing() {
    let at = |mono, wall| Moment {
        mono_ns: mono,
        wall_ns: wall,
    };
    let t0 = at(1_000 * MS, 5_000 * MS);
    // 2 s later with 500 ppm of slew (1 ms): no step; 3 ms more than that: a step, either way.
    assert!(!stepped(t0, at(3_000 * MS, 7_001 * MS)));
    assert!(stepped(t0, at(3_000 * MS, 7_005 * MS)));
    assert!(stepped(t0, at(3_000 * MS, 6_990 * MS)));
    assert!(!stepped(t0, t0));
}
