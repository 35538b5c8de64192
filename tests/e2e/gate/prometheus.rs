//! The same run judged from the collector's history, from a real Prometheus scraping the
//! collector (classic buckets), and from one the collector remote-writes native histograms
//! into.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use super::gate;
use crate::remote_write::drained;
use crate::support::agents::{spawn_collector, spawn_pair};
use crate::support::http::http_get;
use crate::support::metrics::assert_within_one_native_bucket;
use crate::support::ports::{free_tcp_port, free_udp_port};
use crate::support::proc::{bin, TempDir};
use crate::support::{machine, tool, wait_for};

/// The same run judged from the collector's history, from a real Prometheus scraping the
/// collector, and from a second one the collector remote-writes native histograms into
/// (`histograms = "native"`): over a window holding the whole run, the exact counters make
/// the counts equal; a threshold the collector was not told about falls back to the
/// histogram buckets (classic from the scrape, native from remote write), whose straddling
/// band must contain the history's exact count, the native one no wider than the classic.
#[test]
fn prometheus_and_the_collector_agree_on_the_same_run() {
    let _turn = machine::shared();
    let Some(prometheus) = tool("prometheus", "CI") else {
        return;
    };
    let dir = TempDir::new("gate-prom");
    let known = "defaults:\n  min_coverage: 0%\n  select: { src_cloud: azure, dst_cloud: oci }\nobjectives:\n\
  - { name: loss, indicator: loss, at_most: 5% }\n\
  - { name: rtt-p99, indicator: rtt, quantile: p99, at_most: 50ms }\n\
  - { name: rtt-p50-40us, indicator: rtt, quantile: p50, at_most: 40us, key: false }\n";
    let slo_file = dir.write("slo.yaml", known);
    // 45 us is not in the collector's SLO file: no exact counter for it.
    let unknown = dir.write(
        "unknown.yaml",
        "defaults:\n  min_coverage: 0%\n  select: { src_cloud: azure, dst_cloud: oci }\nobjectives:\n  - { name: rtt-p50-45us, indicator: rtt, quantile: p50, at_most: 45us }\n",
    );
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let data = dir.path().join("data");
    // The store native histograms are remote-written into (its own directory).
    let native_dir = TempDir::new("gate-prom-native");
    let native_port = free_tcp_port();
    let _native_store = crate::support::prometheus::receiver(
        &prometheus,
        &native_dir,
        native_port,
        "global:\n  scrape_interval: 15s\n",
        &["--enable-feature=native-histograms"],
    );
    let config = |slo: &std::path::Path| {
        format!(
            "slo = \"{}\"\nslo_interval = \"1s\"\ndata_dir = \"{}\"\n\n[remote_write]\nurl = \"http://127.0.0.1:{native_port}/api/v1/write\"\nhistograms = \"native\"\n",
            slo.display(),
            data.display()
        )
    };
    let collector = spawn_collector(&dir, addr, &config(&slo_file));
    wait_for(Duration::from_secs(10), || {
        http_get(addr, "/healthz").filter(|r| r.0 == 200)
    })
    .expect("collector healthz");
    // The same SLOs as Prometheus rules (`xcbench slo rules`), executed on the live data.
    let rules = dir.path().join("slo.rules.yml");
    let generated = Command::new(bin())
        .args(["slo", "rules"])
        .arg(&slo_file)
        .arg("-o")
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    // The period's ratio is evaluated every 5m in production; every second here, so every
    // rule has run within the test.
    let text = std::fs::read_to_string(&rules).unwrap();
    assert!(text.contains("    interval: 5m\n"));
    std::fs::write(
        &rules,
        text.replace("    interval: 5m\n", "    interval: 1s\n"),
    )
    .unwrap();
    let (_server, prom) = crate::support::prometheus::spawn(
        &prometheus,
        &dir,
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: xcbench\n    static_configs:\n      - targets: ['{addr}']\n",
            rules.display()
        ),
    );
    wait_for(Duration::from_secs(60), || {
        let (_, body) = http_get(prom, "/api/v1/query?query=up")?;
        body.contains("\"1\"]").then_some(())
    })
    .expect("Prometheus scrapes the collector");
    let from_s = unix_now() - 1.0;
    let from = format!("{from_s:.3}");
    let agents = spawn_pair(
        &dir,
        &format!("http://{addr}"),
        [
            ([127, 0, 0, 1], free_udp_port()).into(),
            ([127, 0, 0, 1], free_udp_port()).into(),
        ],
        "5ms",
        [Command::new(bin()), Command::new(bin())],
    );
    std::thread::sleep(Duration::from_secs(6));
    crate::support::proc::terminate_all(agents);
    // Two scrapes after the last snapshot, so Prometheus holds the final counts; every
    // snapshot remote-written.
    std::thread::sleep(Duration::from_secs(3));
    drained(addr);
    let to = format!("{:.3}", unix_now());
    let run_in = |file: &std::path::Path, (from, to): (&str, &str), source: &[&str]| {
        let mut args = vec![
            "--slo",
            file.to_str().unwrap(),
            "--json",
            "--from",
            from,
            "--to",
            to,
        ];
        args.extend_from_slice(source);
        let (code, out, err) = gate(&args, &[]);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
        (code, v)
    };
    let run = |file: &std::path::Path, source: &[&str]| run_in(file, (&from, &to), source);
    let collector_url = format!("http://{addr}");
    let prom_url = format!("http://{prom}");
    let native_url = format!("http://127.0.0.1:{native_port}");
    let (c_code, c) = run(&slo_file, &["--collector", &collector_url]);
    let (p_code, p) = run(&slo_file, &["--prometheus", &prom_url]);
    let (n_code, n) = run(&slo_file, &["--prometheus", &native_url]);
    eprintln!("collector: {c}\nprometheus: {p}\nnative store: {n}");
    assert_eq!((c_code, p_code, n_code), (0, 0, 0), "all pass");
    for i in 0..3 {
        for (store, b) in [("scraped", &p), ("native", &n)] {
            let (a, b) = (&c["objectives"][i], &b["objectives"][i]);
            assert_eq!(a["verdict"], b["verdict"], "{store}: {}", a["name"]);
            assert_eq!(
                a["samples"], b["samples"],
                "{store}: {}: exact counts agree",
                a["name"]
            );
            assert_eq!(a["observed"], b["observed"], "{store}: {}", a["name"]);
        }
        // The value shown: the native buckets' quantile within one of them of the
        // collector's HdrHistogram quantile.
        if let (Some(exact), Some(native), "latency") = (
            c["objectives"][i]["value"].as_f64(),
            n["objectives"][i]["value"].as_f64(),
            c["objectives"][i]["comparison"]["kind"].as_str().unwrap(),
        ) {
            assert_within_one_native_bucket(
                c["objectives"][i]["name"].as_str().unwrap(),
                native,
                exact,
            );
        }
    }
    // Every generated rule evaluated without error on xcbench's data, and the 5m error
    // ratios read what the run did: no loss, no RTT above 50 ms, a share above 40 us.
    let rules_health = wait_for(Duration::from_secs(20), || {
        let (_, body) = http_get(prom, "/api/v1/rules")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let all: Vec<serde_json::Value> = v["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let ok = !all.is_empty()
            && all.iter().all(|r| {
                r["health"] == "ok"
                    && !r["lastEvaluation"]
                        .as_str()
                        .unwrap_or("0001")
                        .starts_with("0001")
            });
        ok.then_some(all.len())
    });
    assert!(
        rules_health.is_some(),
        "every generated rule evaluates with health ok"
    );
    let ratio = |objective: &str| -> Option<f64> {
        let q = format!("xcbench_slo:error_ratio:rate5m{{objective=\"{objective}\"}}");
        let (_, body) = http_get(
            prom,
            &format!(
                "/api/v1/query?query={}",
                q.replace('{', "%7B")
                    .replace('}', "%7D")
                    .replace('"', "%22")
                    .replace(':', "%3A")
            ),
        )?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    let ratios = wait_for(Duration::from_secs(20), || {
        Some((ratio("loss")?, ratio("rtt-p99")?, ratio("rtt-p50-40us")?))
    })
    .expect("the generated error-ratio rules record a value");
    eprintln!(
        "generated rules ({} of them): 5m error ratios {ratios:?}",
        rules_health.unwrap()
    );
    assert_eq!((ratios.0, ratios.1), (0.0, 0.0));
    assert!((0.0..=1.0).contains(&ratios.2), "{}", ratios.2);

    // Without an exact counter: the buckets' straddling band holds the exact count.
    let (_, c) = run(&unknown, &["--collector", &collector_url]);
    let a = &c["objectives"][0];
    let n = a["samples"].as_f64().unwrap();
    let exact = a["observed"].as_f64().unwrap() * n;
    let mut bands = Vec::new();
    for (store, url, form) in [
        ("scraped", &prom_url, "classic buckets"),
        ("native", &native_url, "native histogram buckets"),
    ] {
        let (_, p) = run(&unknown, &["--prometheus", url]);
        let b = &p["objectives"][0];
        eprintln!("45us: collector {a}\n{store}: {b}");
        assert_eq!(a["samples"], b["samples"], "{store}");
        let certain = b["observed"].as_f64().unwrap() * n;
        let reasons = b["reasons"].to_string();
        assert!(reasons.contains(form), "{store}: {reasons}");
        let straddling: f64 = reasons
            .split(" count as straddling")
            .next()
            .and_then(|r| r.rsplit('(').next())
            .and_then(|r| r.trim_end_matches(')').parse().ok())
            .unwrap_or_else(|| panic!("{store}: no straddling count in {reasons}"));
        assert!(
            certain <= exact + 0.5 && exact <= certain + straddling + 0.5,
            "{store}: the exact {exact} outside the band {certain} + {straddling} straddling"
        );
        bands.push(straddling);
    }
    assert!(
        bands[1] <= bands[0],
        "the native band ({}) wider than the classic one ({})",
        bands[1],
        bands[0]
    );
    eprintln!(
        "45us: straddling samples: {} in classic buckets, {} in native ones",
        bands[0], bands[1]
    );

    // A window after the agents stopped: neither source has a sample in it, and both say
    // why, naming the agents that fell silent just before it (max_report_age 2 s here).
    let silent = dir.write(
        "silent.yaml",
        "defaults:\n  min_coverage: 0%\n  max_report_age: 2s\n  select: { src_cloud: azure, dst_cloud: oci }\nobjectives:\n  - { name: rtt-p99, indicator: rtt, quantile: p99, at_most: 50ms }\n",
    );
    std::thread::sleep(Duration::from_secs(6));
    let later = format!("{:.3}", unix_now());
    for (name, source) in [
        ("collector", ["--collector", collector_url.as_str()]),
        ("prometheus", ["--prometheus", prom_url.as_str()]),
    ] {
        let (code, v) = run_in(&silent, (&to, &later), &source);
        let o = &v["objectives"][0];
        eprintln!("after the run, {name}: {o}");
        assert_eq!(code, 3, "{name}: inconclusive");
        assert!(
            o["codes"]
                .as_array()
                .unwrap()
                .contains(&"agent_silent".into()),
            "{name}: {o}"
        );
        assert!(
            o["reasons"]
                .to_string()
                .contains("agent az-1 stopped reporting"),
            "{name}: {o}"
        );
    }

    // The collector restarted with a threshold it did not count before (45 us): its exact
    // counters start at the series' lifetime totals (restored from data_dir). Over a window
    // that began before the restart, a difference from nothing is no count: the gate sees
    // that they grew by more than the histogram did and judges from the classic buckets
    // (before: the whole run's samples counted for a window holding part of it).
    drop(collector);
    let both = dir.write(
        "both.yaml",
        &format!(
            "{known}- {{ name: rtt-p50-45us, indicator: rtt, quantile: p50, at_most: 45us }}\n"
        ),
    );
    let restarted = spawn_collector(&dir, addr, &config(&both));
    if wait_for(Duration::from_secs(10), || {
        http_get(addr, "/healthz").filter(|r| r.0 == 200)
    })
    .is_none()
    {
        let out = restarted.terminate(Duration::from_secs(2));
        panic!(
            "no collector after the restart: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Two scrapes of the new counters.
    std::thread::sleep(Duration::from_secs(3));
    let mid = format!("{:.3}", from_s + 4.0);
    let now = format!("{:.3}", unix_now());
    let (_, p) = run_in(&unknown, (&mid, &now), &["--prometheus", &prom_url]);
    let o = &p["objectives"][0];
    eprintln!("45us after the restart, prometheus: {o}");
    assert!(
        o["reasons"]
            .to_string()
            .contains("did not exist through the whole window"),
        "{o}"
    );
    let part = o["samples"].as_f64().unwrap();
    assert!(
        part > 0.0 && part < n,
        "{part} samples over part of the run, the whole run held {n}"
    );
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
