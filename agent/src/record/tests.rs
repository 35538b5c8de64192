//! The recorder held to its promises: deltas reset, series come and go with the
//! configuration, outcomes go to the load their probe was sent under, and loss directions
//! learnt late are dated with the losses.

use super::*;
use crate::probe::Reply;
use xcbench_snapshot::Cloud;

fn oci_1() -> Identity {
    Identity {
        id: "oci-1".parse().unwrap(),
        cloud: Cloud::Oci,
        region: "r".into(),
        zone: String::new(),
    }
}

#[test]
fn a_newer_configuration_adds_and_drops_series() {
    let (a, b) = (
        oci_1(),
        Identity {
            id: "oci-2".parse().unwrap(),
            ..oci_1()
        },
    );
    let mut rec = Recorder::new();
    let udp = |p: &Identity| (p.clone(), Protocol::Udp, ProbeKind::Stamp);
    rec.set_configured(&[udp(&a)], &[]);
    let peers = |rec: &mut Recorder| -> Vec<String> {
        rec.take_series(0)
            .iter()
            .map(|s| s.peer.id.to_string())
            .collect()
    };
    assert_eq!(peers(&mut rec), ["oci-1"]);
    rec.set_configured(&[udp(&a), udp(&b)], &[]);
    assert_eq!(peers(&mut rec), ["oci-1", "oci-2"]);
    let moved = Identity {
        region: "r2".into(),
        ..a.clone()
    };
    rec.set_configured(&[udp(&moved)], &[]);
    let s = rec.take_series(0);
    assert_eq!(
        (s.len(), s[0].peer.region.as_str()),
        (1, "r2"),
        "relabelled, b dropped"
    );
}

#[test]
fn deltas_reset_between_snapshots() {
    let peer = oci_1();
    let key = (peer.id.clone(), Protocol::Udp, ProbeKind::Stamp);
    let mut rec = Recorder::new();
    rec.add_series(peer, Protocol::Udp, ProbeKind::Stamp);
    let first = rec.take_series(0);
    assert_eq!(first.len(), 1, "configured series exists at zero");
    assert_eq!(first[0].counters, Counters::default());

    let reply = Reply {
        seq: 0,
        rtt_ns: Some(2_000_000),
        one_way: Some((-5, 1_000_000)),
        ipdv: [Some((-3_000, 4_000)), None],
        reordered: true,
        jitter_forward_ns: 10.4,
        jitter_reverse_ns: 0.0,
        clock_error_ns: 7,
        synchronized: false,
        // Sent with EF (46), arrived as 0 at the reflector; its reply came back as EF.
        dscp: Some(crate::probe::sender::DscpSeen {
            sent: 46,
            at_reflector: 0,
            reflected: 46,
            back: Some(46),
            ecn_at_reflector: 2,
            ecn_back: Some(0),
        }),
    };
    rec.handle_event(&key, &Event::Sent { seq: 0 }, TimestampSource::User);
    rec.handle_event(&key, &Event::Reply(reply), TimestampSource::User);
    rec.handle_event(&key, &Event::Unmatched, TimestampSource::User);
    let s = rec.take_series(0).remove(0);
    assert_eq!(
        (s.counters.sent, s.counters.received, s.counters.reordered),
        (1, 1, 1)
    );
    assert_eq!(s.timestamping, TimestampSource::User);
    assert_eq!(s.jitter_forward_ns, Some(10));
    assert_eq!(
        (s.counters.remarked_forward, s.counters.remarked_reverse),
        (1, 0)
    );
    assert_eq!((s.dscp_forward, s.dscp_reverse), (Some(0), Some(46)));
    assert_eq!((s.ecn_forward, s.ecn_reverse), (Some(2), Some(0)));
    let rtt = s
        .histograms
        .iter()
        .find(|h| h.metric == Metric::Rtt)
        .unwrap();
    assert_eq!((rtt.count, rtt.sum_ns), (1, 2_000_000));
    let fwd = s
        .histograms
        .iter()
        .find(|h| h.metric == Metric::OneWayForward)
        .unwrap();
    assert_eq!(fwd.sum_ns, 0, "negative one-way delay held as 0");
    let ipdv = s
        .histograms
        .iter()
        .find(|h| h.metric == Metric::IpdvForward)
        .unwrap();
    assert_eq!(ipdv.sum_ns, 3_000);
    assert_eq!(rec.take_sender_counters().unmatched, 1);

    let again = rec.take_series(0).remove(0);
    assert_eq!(again.counters, Counters::default());
    assert_eq!((again.dscp_forward, again.dscp_reverse), (None, None));
    assert!(again.histograms.is_empty());

    // A reply across a clock step: its round trip counts, its one-way delays do not.
    let stepped = Reply {
        one_way: None,
        ipdv: [None, None],
        ..reply
    };
    rec.handle_event(&key, &Event::Reply(stepped), TimestampSource::User);
    let s = rec.take_series(0).remove(0);
    assert_eq!((s.counters.received, s.counters.clock_steps), (1, 1));
    let metrics: Vec<Metric> = s.histograms.iter().map(|h| h.metric).collect();
    assert_eq!(metrics, vec![Metric::Rtt]);
    // A reply whose reflector claims a dwell longer than the round trip: answered, one
    // clock step, and nothing in any histogram (not an RTT of 0).
    let moved = Reply {
        rtt_ns: None,
        ..stepped
    };
    rec.handle_event(&key, &Event::Reply(moved), TimestampSource::User);
    rec.handle_event(&key, &Event::ClockMoved { seq: 1 }, TimestampSource::User);
    let s = rec.take_series(0).remove(0);
    assert_eq!((s.counters.received, s.counters.clock_steps), (2, 2));
    assert!(
        s.histograms.iter().all(|h| h.count == 0),
        "{:?}",
        s.histograms
    );
}

#[test]
fn outcomes_under_load_go_to_their_own_series() {
    let peer = oci_1();
    let key = (peer.id.clone(), Protocol::Tcp, ProbeKind::Rr);
    let mut rec = Recorder::new();
    rec.add_series(peer.clone(), Protocol::Tcp, ProbeKind::Rr);
    let rtt = |rec: &mut Recorder, ns| {
        rec.handle_event(
            &key,
            &Event::Rtt { seq: 0, rtt_ns: ns },
            TimestampSource::Kernel,
        )
    };
    rtt(&mut rec, 1_000_000);
    rec.set_load(&peer.id, Load::Bench);
    rtt(&mut rec, 9_000_000);
    rtt(&mut rec, 8_000_000);
    rec.set_load(&peer.id, Load::Idle);
    rtt(&mut rec, 2_000_000);
    // An unconfigured series stays unrecorded under load too.
    rec.set_load(&"db9".parse().unwrap(), Load::Bench);
    rec.handle_event(
        &("db9".parse().unwrap(), Protocol::Tcp, ProbeKind::Rr),
        &Event::Rtt { seq: 0, rtt_ns: 1 },
        TimestampSource::Kernel,
    );
    let series = rec.take_series(0);
    assert_eq!(series.len(), 2);
    let sum = |load| {
        let s = series.iter().find(|s| s.load == load).unwrap();
        (s.counters.received, s.histograms[0].sum_ns)
    };
    assert_eq!(sum(Load::Idle), (2, 3_000_000));
    assert_eq!(sum(Load::Bench), (2, 17_000_000));
    assert_eq!(
        series
            .iter()
            .find(|s| s.load == Load::Bench)
            .unwrap()
            .timestamping,
        TimestampSource::Kernel
    );
}

fn stamp_key(rec: &mut Recorder) -> SeriesKey {
    let peer = oci_1();
    rec.add_series(peer.clone(), Protocol::Udp, ProbeKind::Stamp);
    (peer.id, Protocol::Udp, ProbeKind::Stamp)
}

fn run(first: u32, last: u32, forward: u64, reverse: u64, unattributed: u64) -> Event {
    Event::LossDirection {
        first,
        last,
        forward,
        reverse,
        unattributed,
    }
}

#[test]
fn an_outcome_goes_to_the_load_its_probe_was_sent_under() {
    let mut rec = Recorder::new();
    let key = stamp_key(&mut rec);
    let on = |rec: &mut Recorder, e: Event| rec.handle_event(&key, &e, TimestampSource::User);
    rec.set_load(&key.0, Load::Bench);
    on(&mut rec, Event::Sent { seq: 0 });
    on(&mut rec, Event::Sent { seq: 1 });
    rec.set_load(&key.0, Load::Idle);
    on(&mut rec, Event::Sent { seq: 2 });
    // Resolved after the test ended: still the test's.
    on(&mut rec, Event::Lost { seq: 0 });
    on(&mut rec, Event::Rtt { seq: 1, rtt_ns: 9 });
    on(&mut rec, Event::Rtt { seq: 2, rtt_ns: 1 });
    on(&mut rec, run(0, 0, 1, 0, 0));
    let series = rec.take_series(10);
    let get = |load| series.iter().find(|s| s.load == load).unwrap().counters;
    let (bench, idle) = (get(Load::Bench), get(Load::Idle));
    assert_eq!(
        (bench.sent, bench.lost, bench.lost_forward, bench.received),
        (2, 1, 1, 1)
    );
    assert_eq!((idle.sent, idle.lost, idle.received), (1, 0, 1));
}

#[test]
fn directions_learnt_late_are_dated_to_the_losses() {
    let mut rec = Recorder::new();
    let key = stamp_key(&mut rec);
    let on = |rec: &mut Recorder, e: Event| rec.handle_event(&key, &e, TimestampSource::User);
    for seq in 0..6 {
        on(&mut rec, Event::Sent { seq });
    }
    on(&mut rec, Event::Lost { seq: 1 });
    on(&mut rec, Event::Lost { seq: 2 });
    let first = rec.take_series(100).remove(0);
    assert_eq!((first.counters.lost, first.counters.lost_forward), (2, 0));
    on(&mut rec, Event::Lost { seq: 3 });
    // The run 1..=3 closes in the second interval: all forward. Two of them were counted
    // in the first interval, which ended at 100.
    on(&mut rec, run(1, 3, 3, 0, 0));
    let second = rec.take_series(200).remove(0);
    assert_eq!((second.counters.lost, second.counters.lost_forward), (1, 1));
    assert_eq!(
        second.earlier_directions,
        [EarlierDirections {
            interval_end_unix_ns: 100,
            lost_forward: 2,
            lost_reverse: 0
        }]
    );
    assert_eq!(
        second.counters_with_earlier().lost_forward,
        3,
        "the running totals"
    );
    assert!(rec.take_series(300)[0].earlier_directions.is_empty());
}

#[test]
fn a_mixed_run_across_intervals_keeps_only_the_certain_part() {
    let mut rec = Recorder::new();
    let key = stamp_key(&mut rec);
    let on = |rec: &mut Recorder, e: Event| rec.handle_event(&key, &e, TimestampSource::User);
    for seq in 0..8 {
        on(&mut rec, Event::Sent { seq });
    }
    for seq in 0..3 {
        on(&mut rec, Event::Lost { seq });
    }
    rec.take_series(100);
    on(&mut rec, Event::Lost { seq: 3 });
    // Four lost, three forward and one reverse, which one unknown: the first interval's
    // three are at least two forward; the second's one could be either.
    on(&mut rec, run(0, 3, 3, 1, 0));
    let s = rec.take_series(200).remove(0);
    assert_eq!((s.counters.lost_forward, s.counters.lost_reverse), (0, 0));
    assert_eq!(
        s.earlier_directions,
        [EarlierDirections {
            interval_end_unix_ns: 100,
            lost_forward: 2,
            lost_reverse: 0
        }]
    );
    // An unattributed run (a reflector restarted) adds nothing, and is not revisited.
    on(&mut rec, Event::Lost { seq: 5 });
    on(&mut rec, run(5, 5, 0, 0, 1));
    on(&mut rec, run(5, 5, 1, 0, 0));
    let s = rec.take_series(300).remove(0);
    assert_eq!(
        (
            s.counters.lost,
            s.counters.lost_forward,
            s.counters.lost_reverse
        ),
        (1, 0, 0)
    );
}

/// Two flows with the same sequence numbers (each its own session): each keeps its own
/// ledger and counts; the series is both together; a loss's direction lands in its flow's
/// interval, and the flows come out in order with their RTTs.
#[test]
fn flows_count_apart_and_add_up_to_the_series() {
    let mut rec = Recorder::new();
    let key = stamp_key(&mut rec);
    let on = |rec: &mut Recorder, flow: u8, e: Event| {
        rec.handle_flow_event(&key, flow, &e, TimestampSource::User)
    };
    for seq in 0..3 {
        on(&mut rec, 0, Event::Sent { seq });
        on(&mut rec, 1, Event::Sent { seq });
    }
    for seq in 0..3 {
        on(
            &mut rec,
            0,
            Event::Rtt {
                seq,
                rtt_ns: 1_000_000,
            },
        );
    }
    on(&mut rec, 1, Event::Lost { seq: 0 });
    on(
        &mut rec,
        1,
        Event::Rtt {
            seq: 1,
            rtt_ns: 5_000_000,
        },
    );
    on(
        &mut rec,
        1,
        Event::Rtt {
            seq: 2,
            rtt_ns: 5_000_000,
        },
    );
    on(&mut rec, 1, run(0, 0, 0, 1, 0));
    let s = rec.take_series(10).remove(0);
    let c = s.counters;
    assert_eq!((c.sent, c.received, c.lost, c.lost_reverse), (6, 5, 1, 1));
    let flows: Vec<_> = s
        .flows
        .iter()
        .map(|f| {
            (
                f.flow,
                f.sent,
                f.received,
                f.lost,
                f.rtt.as_ref().map(|h| (h.count, h.sum_ns)),
            )
        })
        .collect();
    assert_eq!(
        flows,
        vec![
            (0, 3, 3, 0, Some((3, 3_000_000))),
            (1, 3, 2, 1, Some((2, 10_000_000))),
        ]
    );
    let rtt = s
        .histograms
        .iter()
        .find(|h| h.metric == Metric::Rtt)
        .unwrap();
    assert_eq!((rtt.count, rtt.sum_ns), (5, 13_000_000));
    // The next interval: the flows again, at zero.
    let next = rec.take_series(20).remove(0);
    assert_eq!(next.flows.len(), 2);
    assert!(next.flows.iter().all(|f| f.sent == 0 && f.rtt.is_none()));
    // A series probed over one flow (handle_event) has none.
    let mut one = Recorder::new();
    let key = stamp_key(&mut one);
    one.handle_event(&key, &Event::Sent { seq: 0 }, TimestampSource::User);
    assert!(one.take_series(10)[0].flows.is_empty());
}
