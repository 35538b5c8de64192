//! The link model's tests: each effect (MTU, fragments, loss, rate, delay, jitter, reorder,
//! duplication) and the ground-truth counters, on crafted IPv4 packets.

use super::*;

const MS: u64 = 1_000_000;

fn udp(len: usize, df: bool) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[6] = if df { 0x40 } else { 0 };
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[198, 18, 1, 1]);
    p[16..20].copy_from_slice(&[198, 18, 2, 1]);
    set_ipv4_checksum(&mut p, 20);
    p
}

fn run(d: &mut Direction, n: u64, every_ns: u64, len: usize) -> Vec<(u64, Action)> {
    let mut all = Vec::new();
    for i in 0..n {
        let mut out = Vec::new();
        d.handle_packet(i * every_ns, &udp(len, true), &mut out)
            .unwrap();
        all.extend(out.into_iter().map(|a| (i * every_ns, a)));
    }
    all
}

fn deliver_all(d: &mut Direction, actions: &[(u64, Action)]) {
    let mut ds: Vec<_> = actions
        .iter()
        .filter_map(|(arr, a)| match a {
            Action::Deliver {
                at_ns,
                index,
                proto,
                copy,
                ..
            } => Some((*at_ns, *index, *proto, *copy, *arr)),
            _ => None,
        })
        .collect();
    ds.sort_by_key(|x| (x.0, x.1, x.3));
    for (at, index, proto, copy, arr) in ds {
        d.handle_delivered(index, proto, copy, arr, at, at);
    }
}

#[test]
fn fixed_delay_is_exact_and_fifo() {
    let mut d = Direction::new(
        Impairments {
            delay_ns: 3 * MS,
            ..Impairments::default()
        },
        1400,
        [198, 18, 0, 254],
        1,
    );
    let a = run(&mut d, 100, MS, 100);
    for (arr, action) in &a {
        let Action::Deliver { at_ns, .. } = action else {
            panic!()
        };
        assert_eq!(*at_ns, arr + 3 * MS);
    }
    deliver_all(&mut d, &a);
    let t = &d.truth()[&Proto::Udp];
    assert_eq!((t.packets, t.delivered, t.reordered), (100, 100, 0));
}

#[test]
fn loss_rates_and_counts_agree() {
    let mut d = Direction::new(
        Impairments {
            loss: 0.01,
            ..Impairments::default()
        },
        1400,
        [0; 4],
        7,
    );
    let a = run(&mut d, 100_000, 1000, 100);
    let t = &d.truth()[&Proto::Udp];
    assert_eq!(t.dropped_random + a.len() as u64, 100_000);
    assert!(
        (900..1100).contains(&t.dropped_random),
        "{}",
        t.dropped_random
    );
}

#[test]
fn gilbert_elliott_losses_come_in_bursts() {
    let ge = GilbertElliott {
        p: 0.01,
        r: 0.25,
        loss_good: 0.0,
        loss_bad: 1.0,
    };
    let mut d = Direction::new(
        Impairments {
            burst: Some(ge),
            ..Impairments::default()
        },
        1400,
        [0; 4],
        3,
    );
    let mut lost_runs = Vec::new();
    let mut run_len = 0;
    for i in 0..200_000u64 {
        let mut out = Vec::new();
        d.handle_packet(i, &udp(60, true), &mut out).unwrap();
        if out.is_empty() {
            run_len += 1;
        } else if run_len > 0 {
            lost_runs.push(run_len);
            run_len = 0;
        }
    }
    let mean_run = lost_runs.iter().sum::<u64>() as f64 / lost_runs.len() as f64;
    // Mean burst length 1/r = 4; stationary loss p/(p+r) = 3.8%.
    assert!((3.5..4.5).contains(&mean_run), "{mean_run}");
    let t = &d.truth()[&Proto::Udp];
    let rate = t.dropped_burst as f64 / 200_000.0;
    assert!((0.033..0.043).contains(&rate), "{rate}");
}

#[test]
fn reorder_and_duplicate_are_counted_at_delivery() {
    let mut d = Direction::new(
        Impairments {
            delay_ns: MS,
            reorder: 0.05,
            reorder_gap_ns: 5 * MS,
            duplicate: 0.02,
            ..Impairments::default()
        },
        1400,
        [0; 4],
        11,
    );
    let a = run(&mut d, 10_000, MS, 100);
    deliver_all(&mut d, &a);
    let t = d.truth()[&Proto::Udp].clone();
    assert_eq!(t.delivered, 10_000 + t.duplicated);
    // A packet held 5 ms behind 1 ms spacing is passed by the next 5 packets: it is the
    // one delivered out of order, once per hold (unless two holds overlap).
    assert!(
        t.reordered <= t.reorder_held && t.reordered * 10 >= t.reorder_held * 9,
        "{t:?}"
    );
    assert!((400..600).contains(&t.reorder_held));
    assert!((150..250).contains(&t.duplicated));
}

#[test]
fn jitter_without_reordering_keeps_order_and_spread() {
    let mut d = Direction::new(
        Impairments {
            delay_ns: 2 * MS,
            jitter_ns: 500_000,
            jitter_distribution: JitterDistribution::Uniform,
            ..Impairments::default()
        },
        1400,
        [0; 4],
        5,
    );
    let a = run(&mut d, 5_000, MS, 100);
    let mut last = 0;
    for (_, action) in &a {
        let Action::Deliver { at_ns, .. } = action else {
            panic!()
        };
        assert!(*at_ns >= last, "FIFO");
        last = *at_ns;
    }
    deliver_all(&mut d, &a);
    let p = &d.truth()[&Proto::Udp].planned;
    let (p05, p95) = (
        p.inner().value_at_quantile(0.05),
        p.inner().value_at_quantile(0.95),
    );
    assert!(p05 < 1_700_000 && p95 > 2_300_000, "{p05} {p95}");
    assert_eq!(d.truth()[&Proto::Udp].reordered, 0);
}

#[test]
fn rate_limit_serializes_and_drops_when_the_queue_is_full() {
    let mut d = Direction::new(
        Impairments {
            rate_bps: 8_000_000, // 1 MB/s: a 1000-byte packet takes 1 ms
            queue_limit_ns: 10 * MS,
            ..Impairments::default()
        },
        1400,
        [0; 4],
        1,
    );
    // 100 packets at once: 11 fit (wait 0..=10 ms), the rest overflow the queue.
    let mut out = Vec::new();
    for _ in 0..100 {
        d.handle_packet(0, &udp(1000, true), &mut out).unwrap();
    }
    assert_eq!(out.len(), 11);
    let Action::Deliver { at_ns, .. } = &out[10] else {
        panic!()
    };
    assert_eq!(*at_ns, 11 * MS);
    assert_eq!(d.truth()[&Proto::Udp].dropped_queue, 89);
}

#[test]
fn mtu_sends_frag_needed_or_fragments() {
    let mut d = Direction::new(Impairments::default(), 1400, [198, 18, 0, 254], 1);
    let mut out = Vec::new();
    d.handle_packet(0, &udp(1400, true), &mut out).unwrap();
    assert!(matches!(out[0], Action::Deliver { .. }), "1400 fits");
    out.clear();
    let big = udp(1428, true);
    d.handle_packet(0, &big, &mut out).unwrap();
    let Action::Reply { packet } = &out[0] else {
        panic!("{out:?}")
    };
    let h = Ipv4::parse(packet).unwrap();
    assert_eq!(
        (h.protocol, h.src, h.dst),
        (1, [198, 18, 0, 254], [198, 18, 1, 1])
    );
    assert_eq!((packet[20], packet[21]), (3, 4));
    assert_eq!(u16::from_be_bytes([packet[26], packet[27]]), 1400);
    assert_eq!(checksum(&packet[..20]), 0);
    assert_eq!(checksum(&packet[20..]), 0);
    assert_eq!(&packet[28..48], &big[..20], "quotes the original header");

    out.clear();
    d.handle_packet(0, &udp(3000, false), &mut out).unwrap();
    let frags: Vec<Vec<u8>> = out
        .iter()
        .map(|a| match a {
            Action::Deliver { packet, .. } => packet.clone(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(frags.len(), 3);
    let mut payload = 0;
    for (i, f) in frags.iter().enumerate() {
        let h = Ipv4::parse(f).unwrap();
        assert!(f.len() <= 1400 && checksum(&f[..20]) == 0);
        let fo = u16::from_be_bytes([f[6], f[7]]);
        assert_eq!(usize::from(fo & 0x1fff) * 8, payload);
        assert_eq!(fo & 0x2000 != 0, i < 2);
        payload += h.total_len - 20;
    }
    assert_eq!(payload, 2980);
    let t = &d.truth()[&Proto::Udp];
    assert_eq!((t.dropped_mtu, t.fragments_made), (1, 3));
}

#[test]
fn malformed_and_non_ipv4_are_refused() {
    let mut d = Direction::new(Impairments::default(), 1400, [0; 4], 1);
    let mut out = Vec::new();
    assert_eq!(
        d.handle_packet(0, &[0x60; 40], &mut out),
        Err(Refused::NotIpv4)
    );
    assert_eq!(
        d.handle_packet(0, &[0x45; 10], &mut out),
        Err(Refused::Malformed)
    );
    let mut p = udp(100, true);
    p[3] = 99; // total length disagrees with the read
    assert_eq!(d.handle_packet(0, &p, &mut out), Err(Refused::Malformed));
    assert!(out.is_empty());
}
