//! Remote write into real receivers: Debian's Prometheus 2.42 (`--web.enable-remote-write-
//! receiver`) and VictoriaMetrics 1.79, each fed by a collector that a pair of agents report
//! to, then asked with the same PromQL and compared with the collector's own `/metrics`
//! sample for sample; and a receiver outage with the collector killed (SIGKILL) while its
//! queue held what the receiver had not taken: every snapshot's samples arrive; an agent
//! that leaves the collector's mesh file ends its series in the store at once (stale
//! markers). And the scrape path beside it: Prometheus in agent mode and vmagent scraping
//! the collector.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::agents::{spawn_collector, spawn_pair};
use crate::support::http::http_get;
use crate::support::metrics::assert_within_one_native_bucket;
use crate::support::ports::{free_tcp_port, free_udp_port};
use crate::support::proc::{bin, terminate_all, Proc, TempDir};
use crate::support::{machine, tool, wait_for};

/// Families the collector writes: all but those of the collector's own moment (window
/// summaries, the mesh list, SLO verdicts, its own counters).
fn written(name: &str) -> bool {
    !(name.contains("_window_seconds")
        || name.starts_with("xcbench_collector_")
        || name.starts_with("xcbench_remote_write_")
        || name.starts_with("xcbench_mesh_agent_info")
        || name.starts_with("xcbench_slo_verdict")
        || name.starts_with("xcbench_slo_reason")
        || name.starts_with("xcbench_slo_bound")
        || name.starts_with("xcbench_slo_evaluated"))
}

/// `name{a="1",b="2"}` with the labels sorted, from a name and label pairs.
fn key(name: &str, labels: &BTreeMap<String, String>) -> String {
    let ls: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", ls.join(","))
}

/// The collector's text answer: every sample, keyed as [`key`].
fn collector_samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let labels: BTreeMap<String, String> = labels
            .trim_end_matches('}')
            .split("\",")
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once("=\"").unwrap();
                (k.to_owned(), v.trim_end_matches('"').to_owned())
            })
            .collect();
        out.insert(key(name, &labels), value.parse().unwrap());
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query's vector, keyed as [`key`] (with `__name__` as the name).
fn query(receiver: SocketAddr, q: &str) -> Option<BTreeMap<String, f64>> {
    let (status, body) = http_get(
        receiver,
        &format!("/api/v1/query?query={}&nocache=1", urlencode(q)),
    )?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let mut out = BTreeMap::new();
    for s in v["data"]["result"].as_array()? {
        // A native histogram answers with "histogram", not "value": asked of by its own
        // functions (histogram_count, histogram_sum), not here.
        if s.get("histogram").is_some() {
            continue;
        }
        let mut labels: BTreeMap<String, String> = s["metric"]
            .as_object()?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let name = labels.remove("__name__").unwrap_or_default();
        out.insert(key(&name, &labels), s["value"][1].as_str()?.parse().ok()?);
    }
    Some(out)
}

/// The collector's `/metrics` once its queue is empty and it has sent something.
pub(crate) fn drained(collector: SocketAddr) -> String {
    wait_for(Duration::from_secs(60), || {
        let (_, text) = http_get(collector, "/metrics")?;
        let m = collector_samples(&text);
        (m.get("xcbench_remote_write_queue_samples{}") == Some(&0.0)
            && m["xcbench_remote_write_sent_samples_total{}"] > 0.0)
            .then_some(text)
    })
    .expect("the collector's remote-write queue never drained")
}

/// A collector with a durable history and queue, writing to `url`.
fn collector(dir: &TempDir, addr: SocketAddr, url: &str) -> Proc {
    collector_with(dir, addr, url, "")
}

/// [`collector`] with more lines in its `[remote_write]`.
fn collector_with(dir: &TempDir, addr: SocketAddr, url: &str, remote_write: &str) -> Proc {
    let p = spawn_collector(
        dir,
        addr,
        &format!(
            "data_dir = \"{}\"\n\n[remote_write]\nurl = \"{url}\"\n{remote_write}",
            dir.path().join("data").display()
        ),
    );
    wait_for(Duration::from_secs(10), || {
        http_get(addr, "/healthz").filter(|r| r.0 == 200)
    })
    .expect("collector healthz");
    p
}

/// Two agents probing each other every 10 ms, reporting every 200 ms to `collector`.
fn pair(dir: &TempDir, collector: SocketAddr) -> Vec<Proc> {
    let a: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
    let b: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
    spawn_pair(
        dir,
        &format!("http://{collector}"),
        [a, b],
        "10ms",
        [Command::new(bin()), Command::new(bin())],
    )
}

/// Debian's Prometheus as a remote-write receiver (no scrapes) on `port`, its data in `dir`.
fn prometheus(binary: &Path, dir: &TempDir, port: u16) -> Proc {
    prometheus_with(binary, dir, port, &[])
}

/// [`prometheus`] with more flags.
fn prometheus_with(binary: &Path, dir: &TempDir, port: u16, flags: &[&str]) -> Proc {
    crate::support::prometheus::receiver(
        binary,
        dir,
        port,
        "global:\n  scrape_interval: 15s\n",
        flags,
    )
}

/// VictoriaMetrics (Debian's) on a free loopback port, its data in `dir`, fresh samples
/// searchable at once, once healthy: the process and its address.
pub(crate) fn victoria_metrics(binary: &Path, dir: &TempDir) -> (Proc, SocketAddr) {
    let port = free_tcp_port();
    let p = Proc::spawn(
        "victoria-metrics",
        Command::new(binary)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("vm").display()
            ))
            .arg("-search.latencyOffset=0s")
            .arg("-loggerLevel=ERROR"),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_for(Duration::from_secs(30), || {
        http_get(addr, "/health").filter(|r| r.0 == 200)
    })
    .expect("victoria-metrics healthy");
    (p, addr)
}

/// Every written sample of the collector's answer is the receiver's latest of that series,
/// and the receiver holds one `xcbench_agent_last_report_timestamp_seconds` sample per
/// accepted snapshot. Counts (integers) always equal; other values equal to the bit when
/// `floats_exact`, else within `1e-12` relative (VictoriaMetrics 1.79 keeps a float to
/// about 16 significant digits: a report time in seconds came back 0.2 us off).
fn compare(collector_text: &str, receiver: SocketAddr, floats_exact: bool) -> usize {
    let want: BTreeMap<String, f64> = collector_samples(collector_text)
        .into_iter()
        .filter(|(k, _)| written(k.split('{').next().unwrap()))
        .collect();
    let accepted =
        collector_samples(collector_text)["xcbench_collector_snapshots_total{result=\"accepted\"}"];
    // What differs: a missing series, a value not the collector's, a series the collector
    // does not serve. A store may show what it took a moment later (VictoriaMetrics makes
    // fresh samples searchable within a second or so): asked again until nothing differs.
    let differences = |got: &BTreeMap<String, f64>| -> Vec<String> {
        let mut d: Vec<String> = want
            .iter()
            .filter_map(|(k, w)| {
                let Some(g) = got.get(k) else {
                    return Some(format!("{k}: missing"));
                };
                let integer = w.fract() == 0.0 && w.abs() < 9e15;
                let same = if floats_exact || integer {
                    g == w || (g.is_nan() && w.is_nan())
                } else {
                    (g - w).abs() <= 1e-12 * w.abs().max(1e-300)
                };
                (!same).then(|| format!("{k}: collector {w}, receiver {g}"))
            })
            .collect();
        d.extend(
            got.keys()
                .filter(|k| written(k.split('{').next().unwrap()) && !want.contains_key(*k))
                .map(|k| format!("{k}: not served by the collector")),
        );
        d
    };
    let count_query = "sum(count_over_time(xcbench_agent_last_report_timestamp_seconds[1h]))";
    let settled = wait_for(Duration::from_secs(60), || {
        let count = query(receiver, count_query)?;
        let got = query(receiver, "{__name__=~\"xcbench_.+\"}")?;
        (count.values().next() == Some(&accepted) && differences(&got).is_empty()).then_some(())
    });
    if settled.is_none() {
        let got = query(receiver, "{__name__=~\"xcbench_.+\"}").unwrap_or_default();
        let d = differences(&got);
        panic!(
            "after 60 s the receiver still differs from the collector in {} of {} series (e.g. {:?}); samples of accepted snapshots ({accepted}): {:?}",
            d.len(),
            want.len(),
            &d[..d.len().min(5)],
            query(receiver, count_query)
        );
    }
    want.len()
}

#[test]
fn prometheus_receives_every_sample_the_collector_serves() {
    let _turn = machine::shared();
    let Some(prom) = tool("prometheus", "CI") else {
        return;
    };
    let dir = TempDir::new("rw-prom");
    let port = free_tcp_port();
    let _receiver = prometheus(&prom, &dir, port);
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let _collector = collector(&dir, addr, &format!("http://127.0.0.1:{port}/api/v1/write"));
    let agents = pair(&dir, addr);
    std::thread::sleep(Duration::from_secs(3));
    terminate_all(agents);
    let text = drained(addr);
    let n = compare(&text, ([127, 0, 0, 1], port).into(), true);
    eprintln!("prometheus: {n} series equal to the collector's /metrics");
}

/// `histograms = "native"` into Debian's Prometheus 2.42 with native histograms enabled:
/// each latency histogram arrives as one native histogram whose count and sum are the
/// collector's `_count` and `_sum` to the bit and whose median is the collector's
/// HdrHistogram median within one native bucket (schema 6 for the default 1%), and every
/// other written sample equals the collector's.
#[test]
fn prometheus_takes_native_histograms_from_remote_write() {
    let _turn = machine::shared();
    let Some(prom) = tool("prometheus", "CI") else {
        return;
    };
    let dir = TempDir::new("rw-native");
    let port = free_tcp_port();
    let _receiver = prometheus_with(&prom, &dir, port, &["--enable-feature=native-histograms"]);
    let receiver: SocketAddr = ([127, 0, 0, 1], port).into();
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let url = format!("http://{receiver}/api/v1/write");
    let _collector = collector_with(&dir, addr, &url, "histograms = \"native\"\n");
    let agents = pair(&dir, addr);
    std::thread::sleep(Duration::from_secs(3));
    terminate_all(agents);
    let text = drained(addr);
    let served = collector_samples(&text);
    let histograms: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" histogram"))
        .collect();
    assert!(
        histograms.contains(&"xcbench_rtt_seconds"),
        "{histograms:?}"
    );
    let of_histogram = |name: &str| {
        histograms.iter().any(|h| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name == format!("{h}{s}"))
        })
    };
    // Every float sample written but the histograms' series.
    let want: BTreeMap<&String, &f64> = served
        .iter()
        .filter(|(k, _)| {
            let name = k.split('{').next().unwrap();
            written(name) && !of_histogram(name)
        })
        .collect();
    let floats_equal = wait_for(Duration::from_secs(60), || {
        let got = query(receiver, "{__name__=~\"xcbench_.+\"}")?;
        let stray = got
            .keys()
            .any(|k| written(k.split('{').next().unwrap()) && !want.contains_key(k));
        (want.iter().all(|(k, w)| got.get(*k) == Some(*w)) && !stray).then_some(got.len())
    });
    assert!(
        floats_equal.is_some(),
        "the float samples differ: {:?}",
        query(receiver, "{__name__=~\"xcbench_.+\"}").map(|g| g.len())
    );
    // Each histogram's count and sum, series by series (the functions drop the name).
    let mut checked = 0;
    for h in &histograms {
        for (suffix, function) in [("_count", "histogram_count"), ("_sum", "histogram_sum")] {
            let want: BTreeMap<String, f64> = served
                .iter()
                .filter_map(|(k, v)| {
                    let labels = k.strip_prefix(&format!("{h}{suffix}"))?;
                    labels.starts_with('{').then(|| (labels.to_owned(), *v))
                })
                .collect();
            let got = wait_for(Duration::from_secs(30), || {
                let got: BTreeMap<String, f64> = query(receiver, &format!("{function}({h})"))?
                    .into_iter()
                    .map(|(k, v)| (k.trim_start_matches(|c| c != '{').to_owned(), v))
                    .collect();
                (got == want).then_some(got)
            });
            assert!(
                got.is_some(),
                "{function}({h}): collector {want:?}, Prometheus {:?}",
                query(receiver, &format!("{function}({h})"))
            );
            checked += want.len();
        }
    }
    assert!(checked >= 4, "{checked} counts and sums");
    for dst in ["oci-1", "az-1"] {
        let sel = format!("dst_agent=\"{dst}\",kind=\"stamp\",load=\"idle\"");
        let native = query(
            receiver,
            &format!("histogram_quantile(0.5, xcbench_rtt_seconds{{{sel}}})"),
        )
        .and_then(|v| v.values().next().copied())
        .expect("a native median");
        let exact = served
            .iter()
            .find(|(k, _)| {
                k.starts_with("xcbench_rtt_window_seconds{")
                    && k.contains(&format!("dst_agent=\"{dst}\""))
                    && k.contains("kind=\"stamp\"")
                    && k.contains("quantile=\"0.5\"")
            })
            .map(|(_, v)| *v)
            .expect("the collector's window median");
        assert_within_one_native_bucket(&format!("->{dst}: p50"), native, exact);
    }
    eprintln!(
        "native remote write: {} float series and {} histograms equal to the collector's; {} samples sent",
        want.len(),
        checked / 2,
        served["xcbench_remote_write_sent_samples_total{}"]
    );
}

/// An agent taken out of the collector's mesh file: every series it is part of, as prober
/// or as peer, ends in Prometheus at once (the stale markers the collector writes), while
/// the agent that stays keeps its series.
#[test]
fn series_of_an_agent_that_leaves_the_mesh_end_in_the_store() {
    let _turn = machine::shared();
    let Some(prom) = tool("prometheus", "CI") else {
        return;
    };
    let dir = TempDir::new("rw-stale");
    let port = free_tcp_port();
    let _receiver = prometheus(&prom, &dir, port);
    let receiver: SocketAddr = ([127, 0, 0, 1], port).into();
    let a: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
    let b: SocketAddr = ([127, 0, 0, 2], free_udp_port()).into();
    let mesh = |with_oci: bool| {
        let mut t = format!(
            "[mesh]\nallow_loopback = true\n\n[azure]\naddress_space = [\"127.0.0.1/32\"]\n\n[[azure.agents]]\nid = \"az-1\"\nregion = \"r-azure\"\naddress = \"{a}\"\n\n[oci]\naddress_space = [\"127.0.0.2/31\"]\n"
        );
        if with_oci {
            t.push_str(&format!(
                "\n[[oci.agents]]\nid = \"oci-1\"\nregion = \"r-oci\"\naddress = \"{b}\"\n"
            ));
        }
        t
    };
    let mesh_file = dir.write("mesh.toml", &mesh(true));
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let _collector = spawn_collector(
        &dir,
        addr,
        &format!(
            "data_dir = \"{}\"\nmesh = \"{}\"\n\n[remote_write]\nurl = \"http://{receiver}/api/v1/write\"\n",
            dir.path().join("data").display(),
            mesh_file.display()
        ),
    );
    wait_for(Duration::from_secs(10), || {
        http_get(addr, "/healthz").filter(|r| r.0 == 200)
    })
    .expect("collector healthz");
    let agents = spawn_pair(
        &dir,
        &format!("http://{addr}"),
        [a, b],
        "10ms",
        [Command::new(bin()), Command::new(bin())],
    );
    std::thread::sleep(Duration::from_secs(2));
    terminate_all(agents);
    drained(addr);
    let series = |q: &str| query(receiver, q).map(|v| v.len());
    let oci = "xcbench_probes_sent_total{src_agent=\"oci-1\"}";
    let to_oci = "xcbench_probes_sent_total{dst_agent=\"oci-1\"}";
    let own = "xcbench_agent_last_report_timestamp_seconds{agent=\"oci-1\"}";
    let stays = "xcbench_agent_last_report_timestamp_seconds{agent=\"az-1\"}";
    assert_eq!(
        wait_for(Duration::from_secs(10), || series(oci).filter(|n| *n > 0)),
        Some(1),
        "oci-1's series are in the store"
    );
    assert!(series(to_oci).unwrap() > 0 && series(own) == Some(1));
    std::fs::write(&mesh_file, mesh(false)).unwrap();
    // The collector reads its mesh file every second and writes the markers at once.
    let ended = wait_for(Duration::from_secs(20), || {
        [oci, to_oci, own]
            .iter()
            .all(|q| series(q) == Some(0))
            .then_some(())
    });
    assert!(
        ended.is_some(),
        "oci-1's series still answer: {:?} {:?} {:?}",
        query(receiver, oci),
        query(receiver, to_oci),
        query(receiver, own)
    );
    assert_eq!(
        series(stays),
        Some(1),
        "az-1 stays in the mesh and in the store"
    );
}

#[test]
fn victoria_metrics_receives_every_sample_the_collector_serves() {
    let _turn = machine::shared();
    let Some(vm) = tool("victoria-metrics", "CI") else {
        return;
    };
    let dir = TempDir::new("rw-vm");
    let (_receiver, receiver) = victoria_metrics(&vm, &dir);
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let _collector = collector(&dir, addr, &format!("http://{receiver}/api/v1/write"));
    let agents = pair(&dir, addr);
    std::thread::sleep(Duration::from_secs(3));
    terminate_all(agents);
    let text = drained(addr);
    let n = compare(&text, receiver, false);
    eprintln!("victoria-metrics: {n} series equal to the collector's /metrics");
}

/// The receiver stops while agents report; the collector queues, is killed with SIGKILL,
/// starts again and finds its queue; the receiver comes back and gets every snapshot's
/// samples, once.
#[test]
fn a_receiver_outage_and_a_killed_collector_lose_nothing() {
    let _turn = machine::shared();
    let Some(prom) = tool("prometheus", "CI") else {
        return;
    };
    let dir = TempDir::new("rw-outage");
    let port = free_tcp_port();
    let receiver: SocketAddr = ([127, 0, 0, 1], port).into();
    let url = format!("http://{receiver}/api/v1/write");
    let server = prometheus(&prom, &dir, port);
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let first = collector(&dir, addr, &url);
    let agents = pair(&dir, addr);
    std::thread::sleep(Duration::from_secs(2));
    server.terminate(Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    terminate_all(agents);
    let (_, text) = http_get(addr, "/metrics").unwrap();
    let before = collector_samples(&text);
    let queued = before["xcbench_remote_write_queue_samples{}"];
    let accepted = before["xcbench_collector_snapshots_total{result=\"accepted\"}"];
    assert!(queued > 0.0, "nothing queued while the receiver was down");
    assert!(before["xcbench_remote_write_retries_total{}"] > 0.0);
    drop(first); // SIGKILL
    let _second = collector(&dir, addr, &url);
    let (_, text) = http_get(addr, "/metrics").unwrap();
    assert_eq!(
        collector_samples(&text)["xcbench_remote_write_queue_samples{}"],
        queued,
        "the restarted collector holds what the killed one queued"
    );
    let _server = prometheus(&prom, &dir, port);
    drained(addr);
    let count = wait_for(Duration::from_secs(60), || {
        query(
            receiver,
            "sum(count_over_time(xcbench_agent_last_report_timestamp_seconds[1h]))",
        )?
        .into_values()
        .next()
        .filter(|c| *c == accepted)
    });
    assert_eq!(
        count,
        Some(accepted),
        "one sample per accepted snapshot after the outage ({queued} samples were queued)"
    );
    eprintln!("outage: {queued} samples queued through the outage and a SIGKILL; all {accepted} snapshots' samples arrived");
}

/// The scrape path, the documented alternative: Prometheus in agent mode and vmagent scrape
/// the collector and remote-write what they scraped into Prometheus and VictoriaMetrics;
/// each store ends with the collector's probe counts.
#[test]
fn prometheus_agent_mode_and_vmagent_scrape_into_the_stores() {
    let _turn = machine::shared();
    let (Some(prom), Some(vm), Some(vmagent)) = (
        tool("prometheus", "CI"),
        tool("victoria-metrics", "CI"),
        tool("vmagent", "CI"),
    ) else {
        return;
    };
    let dir = TempDir::new("rw-scrape");
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let _collector = spawn_collector(&dir, addr, "");
    wait_for(Duration::from_secs(10), || {
        http_get(addr, "/healthz").filter(|r| r.0 == 200)
    })
    .expect("collector healthz");
    let prom_port = free_tcp_port();
    let store: SocketAddr = ([127, 0, 0, 1], prom_port).into();
    let _store = prometheus(&prom, &dir, prom_port);
    let (_vm, vm_addr) = victoria_metrics(&vm, &dir);
    let scrape = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: xcbench\n    static_configs:\n      - targets: ['{addr}']\n"
    );
    let agent_cfg = dir.write(
        "agent.yml",
        &format!("{scrape}remote_write:\n  - url: http://{store}/api/v1/write\n"),
    );
    let _agent = Proc::spawn(
        "prometheus agent",
        Command::new(&prom)
            .arg("--enable-feature=agent")
            .arg(format!("--config.file={}", agent_cfg.display()))
            .arg(format!(
                "--storage.agent.path={}",
                dir.path().join("agent").display()
            ))
            .arg(format!(
                "--web.listen-address=127.0.0.1:{}",
                free_tcp_port()
            ))
            .arg("--log.level=warn"),
    );
    let vmagent_cfg = dir.write("vmagent.yml", &scrape);
    let _vmagent = Proc::spawn(
        "vmagent",
        Command::new(vmagent)
            .arg(format!("-promscrape.config={}", vmagent_cfg.display()))
            .arg(format!("-remoteWrite.url=http://{vm_addr}/api/v1/write"))
            .arg(format!(
                "-remoteWrite.tmpDataPath={}",
                dir.path().join("vmagent").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{}", free_tcp_port()))
            .arg("-loggerLevel=ERROR"),
    );
    let agents = pair(&dir, addr);
    std::thread::sleep(Duration::from_secs(3));
    terminate_all(agents);
    let (_, text) = http_get(addr, "/metrics").unwrap();
    let want: f64 = collector_samples(&text)
        .iter()
        .filter(|(k, _)| k.starts_with("xcbench_probes_sent_total{"))
        .map(|(_, v)| v)
        .sum();
    assert!(want > 0.0);
    for (name, receiver) in [("prometheus agent mode", store), ("vmagent", vm_addr)] {
        let got = wait_for(Duration::from_secs(60), || {
            query(receiver, "sum(xcbench_probes_sent_total)")?
                .into_values()
                .next()
                .filter(|v| *v == want)
        });
        assert_eq!(got, Some(want), "{name}: the store's sum of probes sent");
    }
}
