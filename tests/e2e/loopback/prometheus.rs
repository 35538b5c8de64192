//! A real Prometheus server scraping the collector, and the shipped recording rules checked
//! and unit-tested by promtool.

use std::process::Command;
use std::time::Duration;

use super::{metrics, run_pair, run_pair_with};
use crate::support::http::http_get;
use crate::support::proc::TempDir;
use crate::support::{machine, repo_path, tool, wait_for};

#[test]
fn prometheus_server_scrapes_the_collector() {
    let _turn = machine::shared();
    let Some(prometheus) = tool("prometheus", "CI") else {
        return;
    };
    let pair = run_pair(Duration::from_secs(1));
    let (_, m) = metrics(pair.addr);
    let want_sent: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("xcbench_probes_sent_total{"))
        .map(|(_, v)| v)
        .sum();
    assert!(want_sent > 0.0);

    let dir = TempDir::new("prom");
    let (_server, prom) = crate::support::prometheus::spawn(
        &prometheus,
        &dir,
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: xcbench\n    static_configs:\n      - targets: ['{}']\n",
            repo_path("dashboards/xcbench.rules.yml").display(),
            pair.addr
        ),
    );
    let query = |q: &str| -> Option<serde_json::Value> {
        let path = format!("/api/v1/query?query={}", urlencode(q));
        let (status, body) = http_get(prom, &path)?;
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?.clone();
        (!result.is_empty()).then_some(serde_json::Value::Array(result))
    };
    let sent = wait_for(Duration::from_secs(60), || {
        query("sum(xcbench_probes_sent_total)")
    })
    .expect("Prometheus never returned xcbench_probes_sent_total");
    let got: f64 = sent[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert_eq!(got, want_sent, "PromQL sum equals the collector's /metrics");

    let p50 = query("xcbench_rtt_window_seconds{quantile=\"0.5\"}").expect("window p50 series");
    let series = p50.as_array().unwrap();
    assert_eq!(series.len(), 2, "one per direction: {p50}");
    for s in series {
        assert_eq!(s["metric"]["protocol"], "udp");
        let v: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
        assert!(v > 0.0 && v < 0.005, "{s}");
    }
    // rate() needs two scrapes; loopback loses nothing.
    let loss = wait_for(Duration::from_secs(30), || {
        query("sum(rate(xcbench_probes_lost_total[1m]))")
    })
    .expect("loss rate over two scrapes");
    assert_eq!(loss[0]["value"][1], "0", "{loss}");
    // The shipped recording rules load and evaluate against these live series without error
    // (their arithmetic is pinned by `promtool test rules`).
    let healthy = wait_for(Duration::from_secs(30), || {
        let (status, body) = http_get(prom, "/api/v1/rules")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let rules: Vec<serde_json::Value> = v["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let evaluated = rules.iter().all(|r| {
            r["health"] == "ok"
                && !r["lastEvaluation"]
                    .as_str()
                    .unwrap_or("0001")
                    .starts_with("0001")
        });
        (status == 200 && rules.len() == 8 && evaluated).then_some(rules)
    });
    assert!(
        healthy.is_some(),
        "all 8 recording rules evaluated with health ok"
    );
}

/// Debian's Prometheus 2.42 with `--enable-feature=native-histograms` asks for protobuf and
/// gets native histograms beside the classic buckets (`native_histograms = "beside"`,
/// schema 6 for 1%): it keeps only the native ones (2.42 drops a family's classic buckets
/// when a native histogram has its name: what this test pins), their counts are the
/// collector's, and their median is the collector's HdrHistogram median within one native
/// bucket. The text answer keeps the classic buckets.
#[test]
fn prometheus_with_native_histograms_keeps_the_native_ones() {
    let _turn = machine::shared();
    let Some(prometheus) = tool("prometheus", "CI") else {
        return;
    };
    let pair = run_pair_with(
        Duration::from_secs(2),
        "native_histograms = \"beside\"\nnative_histogram_error = \"1%\"\n",
    );
    let (text, m) = metrics(pair.addr);
    assert!(
        text.contains("xcbench_rtt_seconds_bucket{"),
        "text keeps classic buckets"
    );
    let count: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("xcbench_rtt_seconds_count{"))
        .map(|(_, v)| v)
        .sum();
    assert!(count > 0.0);
    let dir = TempDir::new("prom-native");
    let cfg = dir.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: xcbench\n    static_configs:\n      - targets: ['{}']\n",
            pair.addr
        ),
    );
    let port = crate::support::ports::free_tcp_port();
    let prom: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let _server = crate::support::proc::Proc::spawn(
        "prometheus",
        Command::new(&prometheus)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prom").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=native-histograms")
            .arg("--log.level=warn"),
    );
    let query = |q: &str| -> Option<Vec<serde_json::Value>> {
        let (status, body) = http_get(prom, &format!("/api/v1/query?query={}", urlencode(q)))?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (status == 200).then(|| v["data"]["result"].as_array().cloned().unwrap_or_default())
    };
    let got = wait_for(Duration::from_secs(60), || {
        let r = query("sum(histogram_count(xcbench_rtt_seconds))")?;
        let v: f64 = r.first()?["value"][1].as_str()?.parse().ok()?;
        (v == count).then_some(v)
    });
    assert_eq!(got, Some(count), "native counts are the collector's");
    assert_eq!(
        query("count(xcbench_rtt_seconds_bucket)").unwrap(),
        Vec::<serde_json::Value>::new(),
        "Prometheus 2.42 keeps no classic bucket beside a native histogram of the same name"
    );
    for dst in ["oci-1", "az-1"] {
        let sel = format!("dst_agent=\"{dst}\",kind=\"stamp\",load=\"idle\"");
        let native: f64 = query(&format!(
            "histogram_quantile(0.5, xcbench_rtt_seconds{{{sel}}})"
        ))
        .unwrap()[0]["value"][1]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let exact = crate::support::metrics::sample(
            &m,
            "xcbench_rtt_window_seconds",
            &[&format!("dst_agent=\"{dst}\""), "quantile=\"0.5\""],
        )
        .unwrap();
        let off = crate::support::metrics::assert_within_one_native_bucket(
            &format!("->{dst}: p50"),
            native,
            exact,
        );
        eprintln!(
            "->{dst}: native p50 {native:.7} s against HdrHistogram {exact:.7} s ({:.3}%)",
            100.0 * off
        );
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
#[test]
fn shipped_recording_rules_are_valid_and_compute_what_they_claim() {
    let _turn = machine::shared();
    let Some(promtool) = tool("promtool", "CI") else {
        return;
    };
    let dir = repo_path("dashboards");
    for args in [
        vec!["check", "rules", "xcbench.rules.yml"],
        vec!["test", "rules", "xcbench.rules.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(&args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
