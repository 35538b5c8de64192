//! Sans-IO probe state machines: bytes and timestamps in, packets and events out. They read
//! no clock and open no socket, so any timeline can be replayed in a test.

pub mod reflector;
pub mod rr;
pub mod sender;
#[cfg(test)]
mod sim;
pub mod throughput;

pub use reflector::{ReflectError, Reflector, ReflectorLimits};
pub use rr::RrSession;
pub use sender::{Event, Reply, Sender, SenderConfig};

#[cfg(test)]
mod tests {
    use super::sim::Link;
    use super::*;

    const MS: u64 = 1_000_000;

    fn config() -> SenderConfig {
        SenderConfig {
            interval_ns: 10 * MS,
            timeout_ns: 1_000 * MS,
            packet_len: 44,
        }
    }

    #[derive(Default, Debug, PartialEq)]
    struct Tally {
        sent: u64,
        replies: u64,
        lost: u64,
        forward: u64,
        reverse: u64,
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
                Event::Lost { .. } => t.lost += 1,
                Event::LossDirection { forward, reverse } => {
                    t.forward += forward;
                    t.reverse += reverse;
                }
                Event::Duplicate { .. } => t.dup += 1,
                Event::Late { .. } => t.late += 1,
                Event::Malformed | Event::Unmatched | Event::Rtt { .. } => t.other += 1,
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
        let link = Link {
            forward_delay_ns: 3 * MS,
            reverse_delay_ns: MS,
            dwell_ns: 250_000,
            ..Link::default()
        };
        let events = link.run(config(), 100);
        let t = tally(&events);
        assert_eq!((t.sent, t.replies, t.lost), (100, 100, 0));
        for r in replies(&events) {
            // NTP timestamps carry 2^-32 s; conversions round to within 1 ns each.
            assert!(r.rtt_ns.abs_diff(4 * MS) <= 2, "{r:?}");
            assert!(r.forward_ns.abs_diff(3 * MS as i64) <= 2, "{r:?}");
            assert!(r.reverse_ns.abs_diff(MS as i64) <= 2, "{r:?}");
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
        let link = Link {
            forward_delay_ns: MS,
            reverse_delay_ns: MS,
            // Runs of losses of both kinds, mixed runs, and a loss at the very start.
            drop_forward: [0, 10, 11, 50, 71].into_iter().collect(),
            drop_reverse: [1, 20, 60, 61, 70, 72].into_iter().collect(),
            ..Link::default()
        };
        let events = link.run(config(), 100);
        let t = tally(&events);
        assert_eq!(t.sent, 100);
        assert_eq!(t.lost, 11);
        assert_eq!(t.replies, 89);
        assert_eq!((t.forward, t.reverse), (5, 6));
        // Lost is declared at the probe's own timeout, not before.
        let lost_at = events
            .iter()
            .position(|e| *e == Event::Lost { seq: 10 })
            .unwrap();
        let answered_after = events[..lost_at]
            .iter()
            .filter(|e| matches!(e, Event::Reply(_)))
            .count();
        assert!(answered_after > 90 - 11, "seq 10 declared lost too early");
    }

    #[test]
    fn duplicates_reordering_and_late_replies_are_separate() {
        let link = Link {
            forward_delay_ns: MS,
            reverse_delay_ns: MS,
            duplicate_reverse: [30].into_iter().collect(),
            // 15 ms extra: the reply to 40 lands after the reply to 41.
            extra_reverse_delay_ns: [(40, 15 * MS), (70, 1_500 * MS)].into_iter().collect(),
            ..Link::default()
        };
        let events = link.run(config(), 100);
        let t = tally(&events);
        assert_eq!(
            t,
            Tally {
                sent: 100,
                replies: 99,
                lost: 1,
                forward: 0,
                reverse: 1,
                dup: 1,
                late: 1,
                reordered: 1,
                other: 0,
            }
        );
        let r = replies(&events);
        let r40 = r.iter().find(|r| r.seq == 40).unwrap();
        assert!(r40.reordered);
        assert!(r40.rtt_ns.abs_diff(17 * MS) <= 2);
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
    fn replies_to_no_probe_are_unmatched_and_garbage_is_malformed() {
        let mut s = Sender::new(config(), 0);
        let est = crate::wire::ErrorEstimate::from_error_ns(1, false);
        let mut buf = Vec::new();
        assert!(s.poll_transmit(0, est, &mut buf));
        let mut r = Reflector::new(ReflectorLimits::default());
        let mut reply = Vec::new();
        let from = ([127, 0, 0, 1], 1).into();
        r.handle_datagram(10, from, None, est, &buf, &mut reply)
            .unwrap();
        // Spoofed: right sequence, wrong T1.
        let mut spoofed = reply.clone();
        spoofed[35] ^= 1;
        s.handle_datagram(20, &spoofed);
        // Unknown sequence.
        let mut unknown = reply.clone();
        unknown[27] = 9;
        s.handle_datagram(20, &unknown);
        s.handle_datagram(20, &reply[..43]);
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

    #[test]
    fn schedule_does_not_burst_after_a_stall() {
        let mut s = Sender::new(config(), 0);
        let est = crate::wire::ErrorEstimate::from_error_ns(1, false);
        let mut buf = Vec::new();
        assert!(s.poll_transmit(0, est, &mut buf));
        assert!(!s.poll_transmit(5 * MS, est, &mut buf));
        // Stalled for 100 ms: one probe now, then back on an interval, not ten at once.
        assert!(s.poll_transmit(100 * MS, est, &mut buf));
        assert!(!s.poll_transmit(100 * MS, est, &mut buf));
        assert_eq!(s.poll_timeout(), Some(110 * MS));
    }

    #[test]
    fn late_wakeups_keep_the_average_rate() {
        // A timer that always fires 0.9 intervals late (tokio's 1 ms wheel at a 1 ms interval)
        // still sends one probe per interval on average.
        let mut s = Sender::new(config(), 0);
        let est = crate::wire::ErrorEstimate::from_error_ns(1, false);
        let mut buf = Vec::new();
        let mut sent = 0;
        let mut now = 0;
        while now < 1_000 * MS {
            let due = s.poll_timeout().unwrap();
            now = now.max(due) + 9 * MS;
            while s.poll_transmit(now, est, &mut buf) {
                sent += 1;
            }
        }
        assert!((99..=101).contains(&sent), "{sent} probes in 100 intervals");
    }
}
