//! The lab's emulator process: one TUN device per host namespace, opened after `setns()` into
//! that namespace (the descriptor stays valid back home), a reader thread per device that
//! feeds the [`Direction`] models (one pair per path; with two paths a packet's 5-tuple
//! picks its path, [`ecmp`]), a delivery thread per device that writes packets out at the
//! planned time, and a Unix socket that answers with the ground truth as JSON: per path,
//! and with two paths which UDP flows each carried.
//!
//! Timing: CLOCK_MONOTONIC; delivery threads run with 1 ns timer slack, sleep until about
//! 80 us before a packet is due and spin the rest, so a packet leaves within a few
//! microseconds of its planned time. Packets with no delay and an empty queue are written by
//! the reader thread at once.

use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::link::ecmp::{self, FlowKey};
use super::link::{Action, Direction, Proto, Truth};
use super::{LabError, LabSpec, Side, TUN_NAME};

const PR_SET_TIMERSLACK: libc::c_int = 29;
const SPIN_NS: u64 = 80_000;

struct Pending {
    at_ns: u64,
    order: u64,
    packet: Vec<u8>,
    arrived_ns: u64,
    index: u64,
    proto: Proto,
    copy: bool,
    path: usize,
    direction: usize,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at_ns, self.order) == (o.at_ns, o.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    // Earliest first out of a max-heap.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at_ns, o.order).cmp(&(self.at_ns, self.order))
    }
}

#[derive(Default)]
struct Queue {
    heap: Mutex<(BinaryHeap<Pending>, u64)>,
    ready: Condvar,
}

struct Shared {
    start: Instant,
    /// Per path, forward (azure -> oci) and reverse.
    paths: Vec<[Mutex<Direction>; 2]>,
    /// With several paths: packets per UDP flow as it entered, by path.
    flows: Mutex<std::collections::BTreeMap<(usize, FlowKey), u64>>,
    unroutable: Mutex<u64>,
    refused: Mutex<u64>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// Runs the emulator for `spec` until SIGTERM or SIGINT. `ready` is called once every device
/// is configured and the ground-truth socket listens.
pub fn run(spec: &LabSpec, state_dir: &Path) -> Result<(), LabError> {
    block_signals();
    // SAFETY: prctl with PR_SET_TIMERSLACK only changes this thread's timer slack; threads
    // spawned later inherit it.
    unsafe {
        libc::prctl(PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
    let hosts = spec.hosts();
    let mut tuns = Vec::new();
    for h in &hosts {
        let tun = open_tun_in(&h.namespace)?;
        super::ip(&[
            "-n",
            &h.namespace,
            "addr",
            "add",
            &format!("{}/32", h.addr_text()),
            "dev",
            TUN_NAME,
        ])?;
        super::ip(&[
            "-n",
            &h.namespace,
            "link",
            "set",
            TUN_NAME,
            "mtu",
            "1500",
            "up",
        ])?;
        super::ip(&[
            "-n",
            &h.namespace,
            "route",
            "add",
            "198.18.0.0/15",
            "dev",
            TUN_NAME,
        ])?;
        tuns.push(Arc::new(tun));
    }
    let router = [198, 18, 0, 254];
    let shared = Arc::new(Shared {
        start: Instant::now(),
        paths: spec
            .profile
            .paths()
            .into_iter()
            .enumerate()
            .map(|(i, (forward, reverse))| {
                let seed = spec.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                [
                    Mutex::new(Direction::new(forward, spec.profile.mtu, router, seed)),
                    Mutex::new(Direction::new(
                        reverse,
                        spec.profile.mtu,
                        router,
                        seed ^ 0x5eed,
                    )),
                ]
            })
            .collect(),
        flows: Mutex::default(),
        unroutable: Mutex::new(0),
        refused: Mutex::new(0),
    });
    let routes: Arc<HashMap<[u8; 4], usize>> =
        Arc::new(hosts.iter().enumerate().map(|(i, h)| (h.addr, i)).collect());
    let queues: Arc<Vec<Queue>> = Arc::new(hosts.iter().map(|_| Queue::default()).collect());

    for (i, tun) in tuns.iter().enumerate() {
        let (tun, shared, queues) = (tun.clone(), shared.clone(), queues.clone());
        std::thread::spawn(move || deliver_loop(&tun, &shared, &queues[i]));
    }
    for (i, h) in hosts.iter().enumerate() {
        let (shared, queues, routes, tuns) =
            (shared.clone(), queues.clone(), routes.clone(), tuns.clone());
        let (side, sides): (Side, Vec<Side>) = (h.side, hosts.iter().map(|h| h.side).collect());
        std::thread::spawn(move || read_loop(i, side, &sides, &tuns, &shared, &queues, &routes));
    }

    let sock = state_dir.join("truth.sock");
    let _ = std::fs::remove_file(&sock);
    let listener =
        UnixListener::bind(&sock).map_err(|e| LabError::Io(format!("{}: {e}", sock.display())))?;
    {
        let shared = shared.clone();
        let profile = spec.profile.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let view = truth_view(&shared, &profile);
                let _ = conn.write_all(
                    serde_json::to_string_pretty(&view)
                        .unwrap_or_default()
                        .as_bytes(),
                );
            }
        });
    }
    wait_for_signal();
    Ok(())
}

fn read_loop(
    me: usize,
    side: Side,
    sides: &[Side],
    tuns: &[Arc<File>],
    shared: &Shared,
    queues: &[Queue],
    routes: &HashMap<[u8; 4], usize>,
) {
    let mut buf = vec![0u8; 65_536];
    let mut actions = Vec::new();
    let mut tun = tuns[me].as_ref();
    loop {
        let n = match tun.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let now = shared.now_ns();
        let packet = &buf[..n];
        let dst = match super::link::Ipv4::parse(packet) {
            Ok(h) => routes.get(&h.dst).copied(),
            Err(_) => {
                *lock(&shared.refused) += 1;
                continue;
            }
        };
        let Some(dst) = dst.filter(|d| sides[*d] != side) else {
            *lock(&shared.unroutable) += 1;
            continue;
        };
        let direction = if side == Side::Azure { 0 } else { 1 };
        let Ok((path, flow)) = ecmp::path_of(packet, shared.paths.len()) else {
            *lock(&shared.refused) += 1;
            continue;
        };
        if let Some(flow) = flow.filter(|f| shared.paths.len() > 1 && f.protocol == 17) {
            *lock(&shared.flows).entry((path, flow)).or_default() += 1;
        }
        actions.clear();
        if lock(&shared.paths[path][direction])
            .handle_packet(now, packet, &mut actions)
            .is_err()
        {
            *lock(&shared.refused) += 1;
            continue;
        }
        for action in actions.drain(..) {
            match action {
                Action::Reply { packet } => {
                    let _ = tuns[me].as_ref().write(&packet);
                }
                Action::Deliver {
                    at_ns,
                    packet,
                    index,
                    proto,
                    copy,
                } => {
                    let q = &queues[dst];
                    let mut heap = lock(&q.heap);
                    if at_ns <= now && heap.0.is_empty() {
                        drop(heap);
                        let released = shared.now_ns();
                        let _ = tuns[dst].as_ref().write(&packet);
                        lock(&shared.paths[path][direction])
                            .handle_delivered(index, proto, copy, now, at_ns, released);
                        continue;
                    }
                    heap.1 += 1;
                    let order = heap.1;
                    heap.0.push(Pending {
                        at_ns,
                        order,
                        packet,
                        arrived_ns: now,
                        index,
                        proto,
                        copy,
                        path,
                        direction,
                    });
                    q.ready.notify_one();
                }
            }
        }
    }
}

fn deliver_loop(tun: &File, shared: &Shared, q: &Queue) {
    let mut heap = lock(&q.heap);
    loop {
        let Some(next) = heap.0.peek() else {
            heap = q.ready.wait(heap).unwrap_or_else(|p| p.into_inner());
            continue;
        };
        let now = shared.now_ns();
        if next.at_ns > now + SPIN_NS {
            let wait = Duration::from_nanos(next.at_ns - now - SPIN_NS);
            heap = q
                .ready
                .wait_timeout(heap, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            continue;
        }
        if next.at_ns > now {
            let at = next.at_ns;
            drop(heap);
            while shared.now_ns() < at {
                std::hint::spin_loop();
            }
            heap = lock(&q.heap);
            continue;
        }
        let p = heap.0.pop().expect("peeked");
        drop(heap);
        // Released now: the write below also runs the far side's receive path.
        let released = shared.now_ns();
        let mut out = tun;
        let _ = out.write(&p.packet);
        lock(&shared.paths[p.path][p.direction]).handle_delivered(
            p.index,
            p.proto,
            p.copy,
            p.arrived_ns,
            p.at_ns,
            released,
        );
        heap = lock(&q.heap);
    }
}

/// Percentiles of a delay histogram, nanoseconds.
#[derive(Serialize)]
struct DelayView {
    count: u64,
    min: u64,
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
    mean: f64,
}

#[derive(Serialize)]
struct ProtoView<'a> {
    #[serde(flatten)]
    counters: &'a Truth,
    planned_delay_ns: DelayView,
    actual_delay_ns: DelayView,
    late_ns: DelayView,
}

fn delay_view(h: &xcbench_snapshot::LatencyHistogram) -> DelayView {
    let i = h.inner();
    DelayView {
        count: h.len(),
        min: if h.is_empty() { 0 } else { i.min() },
        p50: i.value_at_quantile(0.5),
        p90: i.value_at_quantile(0.9),
        p99: i.value_at_quantile(0.99),
        max: i.max(),
        mean: i.mean(),
    }
}

fn truth_view(shared: &Shared, profile: &super::profile::LinkProfile) -> serde_json::Value {
    let view = |d: &Direction| -> std::collections::BTreeMap<Proto, serde_json::Value> {
        d.truth()
            .iter()
            .map(|(p, t)| {
                let v = ProtoView {
                    counters: t,
                    planned_delay_ns: delay_view(&t.planned),
                    actual_delay_ns: delay_view(&t.actual),
                    late_ns: delay_view(&t.late),
                };
                (*p, serde_json::to_value(v).unwrap_or_default())
            })
            .collect()
    };
    let flows = lock(&shared.flows);
    let paths: Vec<serde_json::Value> = shared
        .paths
        .iter()
        .enumerate()
        .map(|(i, [f, r])| {
            let udp_flows: Vec<serde_json::Value> = flows
                .iter()
                .filter(|((path, _), _)| *path == i)
                .map(|((_, k), packets)| {
                    let at = |(ip, port): ([u8; 4], u16)| {
                        format!("{}:{port}", std::net::Ipv4Addr::from(ip))
                    };
                    serde_json::json!({"src": at(k.src), "dst": at(k.dst), "packets": packets})
                })
                .collect();
            serde_json::json!({
                "forward": view(&lock(f)),
                "reverse": view(&lock(r)),
                "udp_flows": udp_flows,
            })
        })
        .collect();
    // "forward" and "reverse" are the first path's (the whole link when it is one).
    let [f, r] = &shared.paths[0];
    serde_json::json!({
        "profile": profile,
        "forward": view(&lock(f)),
        "reverse": view(&lock(r)),
        "paths": paths,
        "unroutable": *lock(&shared.unroutable),
        "refused": *lock(&shared.refused),
    })
}

/// Opens a TUN device named [`TUN_NAME`] inside namespace `ns` from a helper thread that
/// enters the namespace and returns; the descriptor keeps working from here.
fn open_tun_in(ns: &str) -> Result<File, LabError> {
    let ns = ns.to_owned();
    std::thread::spawn(move || -> Result<File, LabError> {
        let io = |what: &str, e: std::io::Error| LabError::Io(format!("{what}: {e}"));
        let home = File::open("/proc/thread-self/ns/net").map_err(|e| io("own namespace", e))?;
        let target = File::open(format!("/var/run/netns/{ns}"))
            .map_err(|e| io(&format!("namespace {ns}"), e))?;
        // SAFETY: setns on this helper thread only, with descriptors we own.
        if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io("setns", std::io::Error::last_os_error()));
        }
        let tun = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(|e| io("/dev/net/tun", e));
        let result = tun.and_then(|tun| {
            #[repr(C)]
            struct IfReq {
                name: [u8; libc::IFNAMSIZ],
                flags: libc::c_short,
                pad: [u8; 22],
            }
            let mut req = IfReq {
                name: [0; libc::IFNAMSIZ],
                flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
                pad: [0; 22],
            };
            req.name[..TUN_NAME.len()].copy_from_slice(TUN_NAME.as_bytes());
            // SAFETY: TUNSETIFF reads a struct ifreq, which IfReq lays out (name, flags, pad).
            if unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut req) } != 0 {
                return Err(io("TUNSETIFF", std::io::Error::last_os_error()));
            }
            Ok(tun)
        });
        // SAFETY: back to the namespace this thread started in.
        unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) };
        result
    })
    .join()
    .map_err(|_| LabError::Io("TUN helper thread panicked".into()))?
}

fn block_signals() {
    // SAFETY: plain signal-mask calls on a zeroed sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn wait_for_signal() {
    // SAFETY: as above; sigwait blocks this thread until SIGTERM or SIGINT is pending.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        let mut sig = 0;
        libc::sigwait(&set, &mut sig);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
