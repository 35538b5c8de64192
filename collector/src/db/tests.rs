//! The durable history held to its promises: downsampling keeps every count, a reopened
//! history restores what was acknowledged, queries select and report gaps and tests.

use super::*;
use crate::store::history::Tier;
use crate::store::tests::snapshot;
use crate::store::{BucketBounds, Store};
use xcbench_snapshot::Counters;

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;

/// `[from, to)` read long after: only slots wholly inside count.
fn span(from: u64, to: u64) -> Span {
    Span {
        from,
        to,
        now: u64::MAX,
    }
}

fn lowest(v: u64) -> u64 {
    xcbench_snapshot::LatencyHistogram::new()
        .inner()
        .lowest_equivalent(v)
}

/// Snapshot `seq`, measured up to `at`: `n` RTTs of 1 ms + seq us, all answered.
fn at(seq: u64, at: u64, n: u64) -> Snapshot {
    let rtts: Vec<u64> = (0..n).map(|i| 1_000_000 + seq * 1_000 + i).collect();
    let mut s = snapshot(
        seq,
        &rtts,
        Counters {
            sent: n,
            received: n,
            ..Counters::default()
        },
    );
    s.interval_start_unix_ns = at.saturating_sub(5 * S);
    s.interval_end_unix_ns = at;
    s
}

fn append(h: &mut History, s: &Snapshot) {
    let hist = s.decode_histograms().unwrap();
    h.append(s, &hist, s.interval_end_unix_ns).unwrap();
}

fn everything(h: &History, thresholds: &[u64]) -> HistoryAnswer {
    h.query(
        &Selection::default(),
        span(0, u64::MAX),
        &[Metric::Rtt],
        thresholds,
        lowest,
    )
    .unwrap()
}

#[test]
fn downsampling_keeps_every_count_and_the_merged_histogram() {
    let tiers = Tiers::new(vec![
        Tier {
            slot_ns: 10 * S,
            keep_ns: 60 * S,
        },
        Tier {
            slot_ns: 60 * S,
            keep_ns: 600 * S,
        },
        Tier {
            slot_ns: 600 * S,
            keep_ns: 3_600 * S,
        },
    ])
    .unwrap();
    let mut h = History::in_memory(tiers).unwrap();
    // Ten minutes of reports every 5 s.
    for seq in 1..=120 {
        append(&mut h, &at(seq, T0 + seq * 5 * S, 10));
    }
    let thresholds = [1_050_000, 1_100_000];
    let before = everything(&h, &thresholds);
    assert_eq!(before.counters.sent, 1_200);
    assert_eq!(before.metrics[0].count, 1_200);
    let fine = h.footprint().unwrap();
    assert!(fine[0].0 >= 60 && fine[1].0 == 0, "{fine:?}");
    // Long after: every 10 s slot is past its minute and every 1 m slot past its 10
    // minutes, so they merge up, by addition.
    let m = h.migrate(T0 + 1_200 * S + 605 * S).unwrap();
    assert!(m.merged > 0 && m.expired == 0, "{m:?}");
    let coarse = h.footprint().unwrap();
    assert_eq!(coarse[0].0, 0, "{coarse:?}");
    let after = everything(&h, &thresholds);
    assert_eq!(after.counters, before.counters);
    assert_eq!(
        after.metrics, before.metrics,
        "the merged histogram is identical"
    );
    assert!(after.slots.len() < before.slots.len());
    // Past the last tier: the slots leave the history.
    let m = h.migrate(T0 + 100 * 3_600 * S).unwrap();
    assert!(m.expired > 0);
    assert_eq!(everything(&h, &[]).counters.sent, 0);
}

#[test]
fn a_reopened_history_restores_totals_high_water_marks_and_the_window() {
    let dir = std::env::temp_dir().join(format!("xcbench-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    const BUCKETS: BucketBounds = BucketBounds::new(&[1_000_000, 2_000_000]);
    let mut first = Store::new(300 * S, 10 * S, 100, BUCKETS);
    {
        let mut h = History::open(&dir, Tiers::default()).unwrap();
        for seq in 1..=4 {
            let s = at(seq, T0 + seq * 10 * S, 25);
            let hist = s.decode_histograms().unwrap();
            assert_eq!(first.check(&s), Ok(crate::store::Ingest::Accepted));
            h.append(&s, &hist, T0 + seq * 10 * S).unwrap();
            first.apply(&s, &hist, T0 + seq * 10 * S);
        }
    }
    let h = History::open(&dir, Tiers::default()).unwrap();
    let now = T0 + 60 * S;
    let mut second = Store::new(300 * S, 10 * S, 100, BUCKETS);
    second.restore(h.restore(now - 300 * S).unwrap(), now);
    let (k1, s1) = first.series().next().unwrap();
    let (k2, s2) = second.series().next().unwrap();
    assert_eq!(k1, k2);
    assert_eq!(s2.counters, s1.counters);
    let (m1, m2) = (&s1.metrics[&Metric::Rtt], &s2.metrics[&Metric::Rtt]);
    assert_eq!(
        (m2.count, m2.sum_ns, &m2.buckets),
        (m1.count, m1.sum_ns, &m1.buckets)
    );
    assert_eq!(
        m2.window().count(),
        100,
        "the last 5 minutes are back in the window"
    );
    // The high-water mark came back: the last report again is a duplicate.
    let again = at(4, T0 + 40 * S, 25);
    assert_eq!(second.check(&again), Ok(crate::store::Ingest::Duplicate));
    assert_eq!(
        second.check(&at(5, T0 + 50 * S, 1)),
        Ok(crate::store::Ingest::Accepted)
    );
    drop(h);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn queries_select_by_label_and_count_within_thresholds() {
    let mut h = History::in_memory(Tiers::default()).unwrap();
    append(&mut h, &at(1, T0, 100));
    let sel = |kind: &str| Selection {
        kind: Some(kind.parse().unwrap()),
        ..Selection::default()
    };
    let none = h
        .query(&sel("rr"), span(0, u64::MAX), &[Metric::Rtt], &[], lowest)
        .unwrap();
    assert!(none.series.is_empty() && none.metrics[0].count == 0);
    let a = h
        .query(
            &sel("stamp"),
            span(0, u64::MAX),
            &[Metric::Rtt],
            &[1_001_049, 2_000_000],
            lowest,
        )
        .unwrap();
    assert_eq!(a.series.len(), 1);
    assert_eq!(a.agents[0].agent, "az-eastus-app1");
    // 100 samples 1,001,000 .. 1,001,099 ns; the threshold 1,001,049 falls inside a
    // 0.1%-wide bucket: what it holds is reported as straddling, not guessed.
    let w = &a.metrics[0].within;
    assert_eq!((w[1].at_most, w[1].straddling), (100, 0));
    assert!(w[0].straddling > 0, "{w:?}");
    assert!(
        w[0].at_most <= 50 && w[0].at_most + w[0].straddling >= 50,
        "{w:?}"
    );
    let hist = xcbench_snapshot::LatencyHistogram::decode_base64(&a.metrics[0].hdr).unwrap();
    assert_eq!(hist.len(), 100);
    // Outside the range: nothing.
    let early = h
        .query(
            &Selection::default(),
            span(0, T0 - 20 * S),
            &[Metric::Rtt],
            &[],
            lowest,
        )
        .unwrap();
    assert_eq!(early.counters.sent, 0);
}

#[test]
fn queries_report_gaps_and_scheduled_tests() {
    use xcbench_snapshot::{Flow, Protocol, ThroughputCounts, ThroughputOutcome};
    let mut h = History::in_memory(Tiers::default()).unwrap();
    let with_start = |seq: u64, instance: u64, start: u64| {
        let mut s = at(seq, start + 10 * S, 10);
        s.instance = instance;
        s.interval_start_unix_ns = start;
        s
    };
    let mut first = with_start(1, 1, T0);
    first.throughput.push(ThroughputResult {
        peer: first.series[0].peer.clone(),
        protocol: Protocol::Tcp,
        flow: Flow::Forward,
        outcome: ThroughputOutcome::Ok,
        started_unix_ns: T0 + S,
        counts: ThroughputCounts {
            receiver_bytes: 1_250_000_000,
            receiver_ns: 10 * S,
            ..ThroughputCounts::default()
        },
        interval_min_bytes_per_second: 0,
    });
    append(&mut h, &first);
    append(&mut h, &with_start(2, 1, T0 + 10 * S));
    // Reports 3 and 4 were dropped by the agent: a gap of 20 s.
    append(&mut h, &with_start(5, 1, T0 + 40 * S));
    // The agent restarted two minutes later.
    append(&mut h, &with_start(1, 2, T0 + 170 * S));
    let a = everything(&h, &[]);
    let gaps = &a.agents[0].gaps;
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    assert_eq!(
        (
            gaps[0].from_unix_ns,
            gaps[0].to_unix_ns,
            gaps[0].dropped_snapshots
        ),
        (T0 + 20 * S, T0 + 40 * S, 2)
    );
    assert_eq!(
        (
            gaps[1].from_unix_ns,
            gaps[1].to_unix_ns,
            gaps[1].dropped_snapshots
        ),
        (T0 + 50 * S, T0 + 170 * S, 0)
    );
    assert_eq!(a.tests.len(), 1);
    assert_eq!(a.tests[0].receiver_bytes, 1_250_000_000);
    // A range after the gaps shows none; a UDP selection shows no TCP test.
    let later = h
        .query(
            &Selection::default(),
            span(T0 + 170 * S, u64::MAX),
            &[Metric::Rtt],
            &[],
            lowest,
        )
        .unwrap();
    assert!(later.agents[0].gaps.is_empty() && later.tests.is_empty());
    let udp = Selection {
        protocol: Some(Protocol::Udp),
        ..Selection::default()
    };
    let a = h
        .query(&udp, span(0, u64::MAX), &[Metric::Rtt], &[], lowest)
        .unwrap();
    assert!(a.tests.is_empty());
    // The agent's last report ended at T0 + 180 s. A window just after it holds no data
    // but still lists the agent (silent since), one a range's length later does not.
    let after = |from: u64, to: u64| {
        h.query(
            &Selection::default(),
            span(from, to),
            &[Metric::Rtt],
            &[],
            lowest,
        )
        .unwrap()
    };
    let silent = after(T0 + 200 * S, T0 + 260 * S);
    assert!(silent.series.is_empty());
    assert_eq!(silent.agents.len(), 1, "{silent:?}");
    assert_eq!(silent.agents[0].last_report_unix_ns, T0 + 180 * S);
    assert!(after(T0 + 400 * S, T0 + 460 * S).agents.is_empty());
}

#[test]
fn directions_learnt_late_join_the_slot_of_their_losses() {
    let tiers = Tiers::new(vec![Tier {
        slot_ns: 10 * S,
        keep_ns: 600 * S,
    }])
    .unwrap();
    let mut h = History::in_memory(tiers).unwrap();
    // 12:00:05: 20 probes lost, directions unknown yet (a run still open).
    let mut first = at(1, T0 + 5 * S, 0);
    first.series[0].counters = Counters {
        sent: 20,
        lost: 20,
        ..Counters::default()
    };
    append(&mut h, &first);
    // 12:00:25: the run closes: all 20 were lost on the way out.
    let mut second = at(2, T0 + 25 * S, 10);
    second.interval_start_unix_ns = T0 + 5 * S;
    second.series[0].earlier_directions = vec![xcbench_snapshot::EarlierDirections {
        interval_end_unix_ns: T0 + 5 * S,
        lost_forward: 20,
        lost_reverse: 0,
    }];
    append(&mut h, &second);
    let window = |from: u64, to: u64| {
        h.query(
            &Selection::default(),
            span(from, to),
            &[Metric::Rtt],
            &[],
            lowest,
        )
        .unwrap()
        .counters
    };
    let early = window(T0, T0 + 10 * S);
    assert_eq!(
        (early.lost, early.lost_forward),
        (20, 20),
        "dated with the losses"
    );
    let late = window(T0 + 20 * S, T0 + 30 * S);
    assert_eq!(
        (late.lost, late.lost_forward),
        (0, 0),
        "not in the window that learnt them"
    );
    assert_eq!(everything(&h, &[]).counters.lost_forward, 20);
}

#[test]
fn slots_at_the_window_edges_bring_no_data_from_outside_it() {
    let tiers = Tiers::new(vec![Tier {
        slot_ns: 10 * S,
        keep_ns: 600 * S,
    }])
    .unwrap();
    let mut h = History::in_memory(tiers).unwrap();
    // Reports at 12:00:05, :15, :25 (each measured over the 5 s before; slots :00, :10,
    // :20), 10 samples each.
    for seq in 1..=3 {
        append(&mut h, &at(seq, T0 + (seq * 10 - 5) * S, 10));
    }
    let read = |from: u64, to: u64, now: u64| {
        h.query(
            &Selection::default(),
            Span { from, to, now },
            &[Metric::Rtt],
            &[],
            lowest,
        )
        .unwrap()
    };
    // 12:00:03 to 12:00:23, read at 12:05: slot :00 (measured from :00) and slot :20
    // (measured to :25) are left out; the answer says it read :10 to :20.
    let past = read(T0 + 3 * S, T0 + 23 * S, T0 + 300 * S);
    assert_eq!(past.counters.sent, 10);
    assert_eq!(
        (past.covered_from_unix_ns, past.covered_to_unix_ns),
        (Some(T0 + 10 * S), Some(T0 + 20 * S))
    );
    // The same window read at 12:00:23 (it ends now): the filling slot :20 counts.
    assert_eq!(read(T0 + 3 * S, T0 + 23 * S, T0 + 23 * S).counters.sent, 20);
    // Slot :20 measured by :25 lies inside a window to :27.
    assert_eq!(
        read(T0 + 3 * S, T0 + 27 * S, T0 + 300 * S).counters.sent,
        20
    );
    // Aligned to the slots, everything.
    assert_eq!(read(T0, T0 + 30 * S, T0 + 300 * S).counters.sent, 30);
}

#[test]
fn a_series_that_went_quiet_is_named_and_silence_is_read_as_of_the_window() {
    let tiers = Tiers::new(vec![Tier {
        slot_ns: 10 * S,
        keep_ns: 3_600 * S,
    }])
    .unwrap();
    let mut h = History::in_memory(tiers).unwrap();
    let other = |mut s: Snapshot| {
        s.agent.id = "az-2".parse().unwrap();
        s
    };
    // Both agents report every 10 s to 12:01; then only the first, until az-2 comes back
    // at 12:04; both to 12:05.
    for i in 1..=30u64 {
        append(&mut h, &at(i, T0 + i * 10 * S, 10));
        if i <= 6 || i >= 24 {
            append(&mut h, &other(at(i, T0 + i * 10 * S, 10)));
        }
    }
    let read = |from: u64, to: u64| {
        h.query(
            &Selection::default(),
            span(from, to),
            &[Metric::Rtt],
            &[],
            lowest,
        )
        .unwrap()
    };
    let later = read(T0 + 120 * S, T0 + 230 * S);
    assert_eq!(later.series.len(), 1);
    let quiet: Vec<&str> = later.quiet.iter().map(|q| q.src_agent.as_str()).collect();
    assert_eq!(quiet, ["az-2"], "{later:?}");
    // 12:00:30 to 12:01:00: both reported then.
    let early = read(T0 + 30 * S, T0 + 60 * S);
    assert!(early.quiet.is_empty());
    // As of 12:02:00, az-eastus-app1 had reported (it reports now too), and az-2 had
    // been silent since 12:01:00, whatever it does later.
    let before = |a: &HistoryAnswer, id: &str| {
        a.agents
            .iter()
            .find(|x| x.agent == id)
            .map(|x| x.last_report_unix_ns)
    };
    let window = read(T0 + 70 * S, T0 + 120 * S);
    assert_eq!(before(&window, "az-2"), Some(T0 + 60 * S), "{window:?}");
    assert!(before(&window, "az-eastus-app1").unwrap() >= T0 + 110 * S);
    assert!(before(&window, "az-eastus-app1").unwrap() <= T0 + 120 * S);
}

#[test]
fn the_schedules_agents_declare_are_listed_for_test_queries() {
    use xcbench_snapshot::{Flow, Protocol, ThroughputFlow};
    let mut h = History::in_memory(Tiers::default()).unwrap();
    let mut s = at(1, T0 + 10 * S, 10);
    s.throughput_flows = vec![ThroughputFlow {
        peer: s.series[0].peer.clone(),
        protocol: Protocol::Tcp,
        flow: Flow::Forward,
        every_ns: Some(600 * S),
    }];
    append(&mut h, &s);
    let a = everything(&h, &[]);
    assert_eq!(a.scheduled.len(), 1);
    assert_eq!(
        (a.scheduled[0].every_ns, a.scheduled[0].flow),
        (600 * S, Flow::Forward)
    );
    // A selection naming a probe kind reads no tests, and no schedules.
    let stamp = Selection {
        kind: Some(xcbench_snapshot::ProbeKind::Stamp),
        ..Selection::default()
    };
    let a = h
        .query(&stamp, span(0, u64::MAX), &[Metric::Rtt], &[], lowest)
        .unwrap();
    assert!(a.scheduled.is_empty());
}

/// A file written under the default tiers before version 2 (1 min and 10 min, no record of
/// them) opened with today's (5 min, 1 h): its slots move to the new tiers by addition, every
/// count and the merged histogram stay, starts align to the new slots; a second open
/// changes nothing.
#[test]
fn slots_of_the_old_default_tiers_move_into_the_new_ones() {
    let dir = std::env::temp_dir().join(format!("xcbench-relayout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let thresholds = [1_050_000, 1_100_000];
    let before = {
        let mut h = History::open(&dir, Tiers::before_v2()).unwrap();
        for seq in 1..=240 {
            append(&mut h, &at(seq, T0 + seq * 5 * S, 10));
        }
        // Past 6 h and past 7 d: the 10 s slots become 1 min ones, some of those 10 min.
        h.migrate(T0 + 1_200 * S + 6 * 3_600 * S + 60 * S).unwrap();
        h.migrate(T0 + 600 * S + 7 * 86_400 * S + 600 * S).unwrap();
        let fp = h.footprint().unwrap();
        assert!(fp[1].0 > 0 && fp[2].0 > 0, "{fp:?}");
        // As a file of an earlier version: no record of its tiers.
        let txn = h.db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            meta.remove("tiers").unwrap();
            for i in 0..3 {
                meta.remove(format!("tier{i}").as_str()).unwrap();
            }
        }
        txn.commit().unwrap();
        everything(&h, &thresholds)
    };
    for _ in 0..2 {
        let h = History::open(&dir, Tiers::default()).unwrap();
        let after = everything(&h, &thresholds);
        assert_eq!(after.counters, before.counters);
        assert_eq!(after.metrics, before.metrics);
        let txn = h.db.begin_read().unwrap();
        for entry in txn.open_table(SLOTS).unwrap().iter().unwrap() {
            let (k, _) = entry.unwrap();
            let (_, tier, start) = k.value();
            let slot = Tiers::default().get()[usize::from(tier)].slot_ns;
            assert_eq!(start % slot, 0, "tier {tier} slot at {start}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two collectors of a sharded mesh, each given part of the same snapshots (one agent
/// wholly on each, and one that moved to the other while its own was unreachable and came
/// back), answer together exactly what one collector given all of them answers: every
/// count, bucket, slot and gap, and so every verdict.
#[test]
fn the_histories_of_two_shards_merge_into_the_one_collectors_answer() {
    let mut one = History::in_memory(Tiers::default()).unwrap();
    let mut shards = [
        History::in_memory(Tiers::default()).unwrap(),
        History::in_memory(Tiers::default()).unwrap(),
    ];
    let agent = |id: &str| xcbench_snapshot::Identity {
        id: id.parse().unwrap(),
        cloud: xcbench_snapshot::Cloud::Azure,
        region: "eastus".into(),
        zone: String::new(),
    };
    for seq in 1..=30u64 {
        // az-a: seqs 1-10 to shard 0, 11-17 to shard 1 (shard 0 unreachable), then back.
        let mut a = at(seq, T0 + seq * 5 * S, 40 + seq % 7);
        a.agent = agent("az-a");
        a.given_up = Some(0);
        let a_to = usize::from((11..=17).contains(&seq));
        // az-b: always shard 1; it gave up seq 20 (its queue was full): lost everywhere.
        let mut b = at(seq, T0 + seq * 5 * S, 10 + seq % 3);
        b.agent = agent("az-b");
        b.series[0].counters.lost = seq % 2;
        b.given_up = Some(u64::from(seq > 20));
        for (s, shard) in [(a, a_to), (b, 1)] {
            if s.agent.id.as_str() == "az-b" && seq == 20 {
                continue;
            }
            append(&mut one, &s);
            append(&mut shards[shard], &s);
        }
    }
    let thresholds = [1_010_000, 1_020_000];
    let alone = everything(&one, &thresholds);
    let parts: Vec<HistoryAnswer> = shards.iter().map(|h| everything(h, &thresholds)).collect();
    // Alone, shard 0 tells the gate that az-a's middle went elsewhere.
    let gap = &parts[0].agents[0].gaps;
    assert_eq!(
        (
            gap.len(),
            gap[0].elsewhere_snapshots,
            gap[0].dropped_snapshots
        ),
        (1, 7, 0),
        "{gap:?}"
    );
    let merged = HistoryAnswer::merge(parts).unwrap();
    let series = |a: &HistoryAnswer| {
        let mut s: Vec<String> = a.series.iter().map(|l| format!("{l:?}")).collect();
        s.sort();
        s
    };
    assert_eq!(series(&merged), series(&alone));
    assert_eq!(merged.counters, alone.counters);
    assert_eq!(merged.slots, alone.slots);
    assert_eq!(merged.agents, alone.agents, "gaps: az-b's drop only");
    assert_eq!(alone.agents[1].gaps.len(), 1);
    assert_eq!(
        (merged.covered_from_unix_ns, merged.covered_to_unix_ns),
        (alone.covered_from_unix_ns, alone.covered_to_unix_ns)
    );
    for (m, a) in merged.metrics.iter().zip(&alone.metrics) {
        assert_eq!((m.count, m.sum_ns), (a.count, a.sum_ns));
        assert_eq!(m.quantiles, a.quantiles);
        assert_eq!(m.within, a.within);
        let buckets = |hdr: &str| {
            xcbench_snapshot::LatencyHistogram::decode_base64(hdr)
                .unwrap()
                .buckets()
                .collect::<Vec<_>>()
        };
        assert_eq!(buckets(&m.hdr), buckets(&a.hdr));
    }
    // The verdicts of an objective read from both are the same, to the last figure.
    let slo = xcbench_slo::SloFile::parse(
        "slo.yaml",
        "objectives:\n  - { name: rtt-p90, indicator: rtt, quantile: p90, at_most: 1.02ms, min_probes: 10, window: 1h }\n  - { name: loss, indicator: loss, at_most: 60%, min_probes: 10, window: 1h }\n",
    )
    .unwrap();
    let now = T0 + 200 * S;
    for o in &slo.objectives {
        let read = |a: &HistoryAnswer| {
            let e = xcbench_slo::evidence::from_history(o, a.clone()).unwrap();
            serde_json::to_string(&xcbench_slo::judge(o, e, now)).unwrap()
        };
        assert_eq!(read(&merged), read(&alone), "{}", o.name);
    }
}
