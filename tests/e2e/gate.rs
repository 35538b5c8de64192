//! `xcbench gate` against a real collector fed by two loopback agents: verdicts and exit
//! codes (0 pass, 1 fail, 3 inconclusive), the JSON, JUnit and GitHub Actions outputs; and
//! bad input: malformed SLO files (2), a selection that matches nothing (inconclusive, not
//! pass), an unreachable collector (4).

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::agents::{spawn_collector, spawn_pair};
use crate::support::http::http_get;
use crate::support::machine;
use crate::support::ports::{free_tcp_port, free_udp_port};
use crate::support::proc::{bin, TempDir};
use crate::support::{tool, wait_for};

fn gate(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    // The test may itself run under GitHub Actions: only what the case sets applies.
    let out: Output = Command::new(bin())
        .arg("gate")
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .envs(env.iter().copied())
        .output()
        .expect("run xcbench gate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Objectives over the last 6 s of a loopback pair probing every 5 ms (about 1,200
/// probes per direction): two that must pass, one that must fail (no loopback round trip
/// takes 1 us), two that must be inconclusive.
const PASS: &str = r#"  - name: loss
    indicator: loss
    at_most: 5%
  - name: rtt-p99
    indicator: rtt
    quantile: p99
    at_most: 50ms
"#;
const FAIL: &str = r#"  - name: rtt-p50-1us
    indicator: rtt
    quantile: p50
    at_most: 1us
"#;
const INCONCLUSIVE: &str = r#"  - name: too-few
    indicator: loss
    at_most: 5%
    min_probes: 1000000
  - name: nobody
    indicator: rtt
    select: { src_agent: nobody }
    quantile: p99
    at_most: 50ms
"#;

fn slo(objectives: &[&str]) -> String {
    format!(
        "defaults:\n  window: 6s\n  select: {{ src_cloud: azure, dst_cloud: oci }}\nobjectives:\n{}",
        objectives.concat()
    )
}

fn verdicts(json: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).expect("gate JSON");
    v["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_owned(),
                o["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn gate_judges_a_live_pair_and_exits_by_verdict() {
    let _turn = machine::shared();
    let dir = TempDir::new("gate");
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let data = dir.path().join("data");
    let _collector = spawn_collector(&dir, addr, &format!("data_dir = \"{}\"\n", data.display()));
    wait_for(Duration::from_secs(10), || {
        http_get(addr, "/healthz").filter(|r| r.0 == 200)
    })
    .expect("collector healthz");
    let url = format!("http://{addr}");
    let started = Instant::now();
    let _agents = spawn_pair(
        &dir,
        &url,
        [
            ([127, 0, 0, 1], free_udp_port()).into(),
            ([127, 0, 0, 1], free_udp_port()).into(),
        ],
        "5ms",
        [Command::new(bin()), Command::new(bin())],
    );
    // Past the first 10 s slot boundary after 6 s of probes, the window is covered.
    wait_for(Duration::from_secs(30), || {
        let (_, body) = http_get(addr, "/api/v1/history?src_agent=az-1&kind=stamp&from=0")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (started.elapsed() > Duration::from_secs(8) && v["counters"]["received"].as_u64()? > 1_200)
            .then_some(())
    })
    .expect("a second of history");

    let all = dir.write("all.yaml", &slo(&[PASS, FAIL, INCONCLUSIVE]));
    let junit = dir.path().join("junit.xml");
    let report = dir.path().join("report.html");
    let summary = dir.path().join("summary.md");
    let (code, out, err) = gate(
        &[
            "--slo",
            all.to_str().unwrap(),
            "--collector",
            &url,
            "--json",
            "--junit",
            junit.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    eprintln!("{out}\n{err}");
    assert_eq!(code, 1, "a key objective failed: exit 1\n{err}");
    let v = verdicts(&out);
    let want = [
        ("loss", "pass"),
        ("rtt-p99", "pass"),
        ("rtt-p50-1us", "fail"),
        ("too-few", "inconclusive"),
        ("nobody", "inconclusive"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(v, want, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["schema"], "xcbench.gate/v1");
    assert_eq!(json["verdict"], "fail");
    let reasons = |i: usize| json["objectives"][i]["reasons"].to_string();
    assert!(
        reasons(3).contains("fewer than min_probes = 1,000,000"),
        "{}",
        reasons(3)
    );
    assert!(reasons(4).contains("matched no series"), "{}", reasons(4));
    assert!(json["objectives"][0]["samples"].as_u64().unwrap() >= 1_000);
    // JUnit: five cases, one failure, two errors (inconclusive).
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        xml.contains("tests=\"5\" failures=\"1\" errors=\"2\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 5);
    // GitHub: an error annotation (on stderr next to --json) and the step summary.
    assert!(
        err.contains("::error title=xcbench gate%3A rtt-p50-1us fail::p50 <= 1us: "),
        "{err}"
    );
    let md = std::fs::read_to_string(&summary).expect("step summary written");
    assert!(md.contains("| rtt-p50-1us | key | `p50 <= 1us` |"), "{md}");

    check_report_in_chromium(&report, 5);

    // Only what passes: exit 0, and the table names the verdict.
    let pass = dir.write("pass.yaml", &slo(&[PASS]));
    let (code, out, err) = gate(&["--slo", pass.to_str().unwrap(), "--collector", &url], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.starts_with("xcbench gate: PASS: key objectives 2 passed"),
        "{out}"
    );
    // Only the undecidable: exit 3, never a pass.
    let inc = dir.write("inconclusive.yaml", &slo(&[INCONCLUSIVE]));
    let (code, out, err) = gate(&["--slo", inc.to_str().unwrap(), "--collector", &url], &[]);
    assert_eq!(code, 3, "{out}\n{err}");
}

#[test]
fn gate_refuses_bad_input_with_the_documented_exit_codes() {
    let _turn = machine::shared();
    let dir = TempDir::new("gate-bad");
    let bad = dir.write(
        "slo.yaml",
        "objectives:\n  - name: x\n    indicator: rtt\n    quantile: p99\n    at_most: 5x\n",
    );
    let (code, _, err) = gate(&["--slo", bad.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("slo.yaml: objectives[0].at_most = \"5x\": must be a duration"),
        "{err}"
    );
    let missing = dir.path().join("missing.yaml");
    let (code, _, err) = gate(&["--slo", missing.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.yaml: cannot read"), "{err}");
    // Nothing listens on this port: the source cannot be read.
    let good = dir.write("good.yaml", &slo(&[PASS]));
    let closed = format!("http://127.0.0.1:{}", free_tcp_port());
    let (code, out, err) = gate(
        &["--slo", good.to_str().unwrap(), "--collector", &closed],
        &[],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains(&format!("collector {closed}: cannot be reached")),
        "{err}"
    );
    // A collector that is not a URL is a bad flag (2), not an unread source (4).
    let (code, _, err) = gate(
        &[
            "--slo",
            good.to_str().unwrap(),
            "--collector",
            "10.0.0.5:9862",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("collector 10.0.0.5:9862: not a base URL"),
        "{err}"
    );
    // Flags: a range that ends before it starts.
    let (code, _, err) = gate(
        &[
            "--slo",
            good.to_str().unwrap(),
            "--from",
            "2026-11-30T19:00:00Z",
            "--to",
            "2026-11-30T18:00:00Z",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--from must be before --to"), "{err}");
}

/// Opens the report in headless Chromium (Debian's `chromium`; required under CI) and
/// checks what it drew: a screenshot that is not blank, with the curves' blue and the
/// thresholds' red in it; `objectives` sections in the page Chromium parsed.
fn check_report_in_chromium(report: &std::path::Path, objectives: usize) {
    let html = std::fs::read_to_string(report).expect("report written");
    assert_eq!(
        html.matches("<section class=\"objective\"").count(),
        objectives
    );
    let Some(chromium) = tool("chromium", "CI") else {
        return;
    };
    let profile = TempDir::new("chromium");
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gate-report.png");
    let _ = std::fs::remove_file(&shot);
    let url = format!("file://{}", report.display());
    let run = |extra: &[String]| {
        let mut child = Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1000,1400",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromium");
        let deadline = Instant::now() + Duration::from_secs(90);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "chromium did not finish in 90 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut out = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
        out
    };
    let dom = run(&["--dump-dom".to_owned()]);
    assert_eq!(
        dom.matches("class=\"objective\"").count(),
        objectives,
        "the page Chromium parsed"
    );
    run(&[format!("--screenshot={}", shot.display())]);
    let decoder = png::Decoder::new(std::fs::File::open(&shot).expect("screenshot written"));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    let near = |p: &[u8], rgb: [u8; 3]| p.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) < 40);
    let not_white = pixels.iter().filter(|p| !near(p, [255, 255, 255])).count();
    let blue = pixels
        .iter()
        .filter(|p| near(p, [0x09, 0x69, 0xda]))
        .count();
    let red = pixels
        .iter()
        .filter(|p| near(p, [0xcf, 0x22, 0x2e]))
        .count();
    eprintln!(
        "report screenshot {} ({}x{}): {not_white} drawn pixels, {blue} curve blue, {red} threshold red",
        shot.display(),
        info.width,
        info.height
    );
    assert!(not_white * 50 > pixels.len(), "the screenshot is blank");
    assert!(blue > 200 && red > 200, "the charts were not drawn");
}

/// Thresholds (seconds) the low end of the loopback RTT distribution is reported at.
const LOW_TAIL: &str = "0.000002,0.000003,0.000005,0.00001";

/// A collector given the SLO file counts its thresholds exactly per series and judges its
/// objectives on a timer: the exported counts equal the history's, the verdicts equal the
/// gate's, and `promtool check metrics` stays clean.
#[test]
fn the_collector_exports_exact_threshold_counts_and_verdicts() {
    let _turn = machine::shared();
    let dir = TempDir::new("gate-collector");
    // A threshold inside the loopback RTT distribution, where buckets straddle it.
    const MID: &str =
        "  - { name: rtt-p50-40us, indicator: rtt, quantile: p50, at_most: 40us, key: false }\n";
    let slo_file = dir.write("slo.yaml", &slo(&[PASS, FAIL, MID]));
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let _collector = spawn_collector(
        &dir,
        addr,
        &format!("slo = \"{}\"\nslo_interval = \"1s\"\n", slo_file.display()),
    );
    wait_for(Duration::from_secs(10), || {
        http_get(addr, "/healthz").filter(|r| r.0 == 200)
    })
    .expect("collector healthz");
    let url = format!("http://{addr}");
    let started = Instant::now();
    let agents = spawn_pair(
        &dir,
        &url,
        [
            ([127, 0, 0, 1], free_udp_port()).into(),
            ([127, 0, 0, 1], free_udp_port()).into(),
        ],
        "5ms",
        [Command::new(bin()), Command::new(bin())],
    );
    let verdict = |text: &str, objective: &str, v: &str| {
        text.contains(&format!(
            "xcbench_slo_verdict{{objective=\"{objective}\",key=\"true\",verdict=\"{v}\"}} 1"
        ))
    };
    let text = wait_for(Duration::from_secs(30), || {
        let (_, text) = http_get(addr, "/metrics")?;
        (started.elapsed() > Duration::from_secs(9)
            && verdict(&text, "loss", "pass")
            && verdict(&text, "rtt-p50-1us", "fail"))
        .then_some(text)
    })
    .unwrap_or_else(|| panic!("{}", http_get(addr, "/metrics").unwrap().1));
    assert!(verdict(&text, "rtt-p99", "pass"), "{text}");
    // Stop the agents (final snapshots in), then compare the exact counters with the
    // history over all time, series by series.
    crate::support::proc::terminate_all(agents);
    let (_, text) = http_get(addr, "/metrics").unwrap();
    let m = crate::support::metrics::parse_metrics(&text);
    for src in ["az-1", "oci-1"] {
        let sel = [
            format!("src_agent=\"{src}\""),
            "kind=\"stamp\"".to_owned(),
            "metric=\"rtt\"".to_owned(),
        ];
        let sel: Vec<&str> = sel.iter().map(String::as_str).collect();
        let get = |name: &str, extra: &[&str]| {
            crate::support::metrics::sample(&m, name, &[&sel[..], extra].concat())
                .unwrap_or_else(|| panic!("{name} {sel:?} {extra:?}: {text}"))
        };
        let samples = get("xcbench_slo_samples_total", &[]);
        let within_50ms = get("xcbench_slo_within_total", &["threshold=\"0.05\""]);
        let within_1us = get("xcbench_slo_within_total", &["threshold=\"0.000001\""]);
        let within_40us = get("xcbench_slo_within_total", &["threshold=\"0.00004\""]);
        let straddling_40us = get("xcbench_slo_straddling_total", &["threshold=\"0.00004\""]);
        let (_, body) = http_get(
            addr,
            &format!(
                "/api/v1/history?src_agent={src}&kind=stamp&from=0&le=0.05,0.000001,0.00004,{LOW_TAIL}"
            ),
        )
        .unwrap();
        let h: serde_json::Value = serde_json::from_str(&body).unwrap();
        let within = &h["metrics"][0]["within"];
        let tail: Vec<String> = LOW_TAIL
            .split(',')
            .zip(within.as_array().unwrap().iter().skip(3))
            .map(|(le, w)| format!("{} <= {le} s", w["at_most"]))
            .collect();
        // Replies whose dwell swallowed the round trip (a clock moved) carry no RTT.
        let clock_steps = crate::support::metrics::sample(
            &m,
            "xcbench_probes_clock_steps_total",
            &[&format!("src_agent=\"{src}\""), "protocol=\"udp\""],
        )
        .expect("xcbench_probes_clock_steps_total of the STAMP series");
        eprintln!(
            "{src}: {samples} samples, {within_50ms} <= 50ms, {within_1us} <= 1us; low tail {}; {clock_steps} clock steps; history {within}",
            tail.join(", ")
        );
        assert!(samples > 1_000.0);
        assert_eq!(samples, h["metrics"][0]["count"].as_f64().unwrap());
        assert_eq!(within_50ms, within[0]["at_most"].as_f64().unwrap());
        assert_eq!(within_1us, within[1]["at_most"].as_f64().unwrap());
        // Counted at ingest and summed from the history at query time: the same counts.
        assert_eq!(within_40us, within[2]["at_most"].as_f64().unwrap());
        assert_eq!(straddling_40us, within[2]["straddling"].as_f64().unwrap());
        assert_eq!(within_50ms, samples, "every loopback RTT is under 50 ms");
        // An RTT holds both sends' way through the stack (microseconds on loopback), never 0;
        // a reply whose dwell swallowed its round trip (a clock step) records none.
        assert_eq!(
            within_1us, 0.0,
            "no loopback RTT is 1 us: low tail {tail:?}, {clock_steps} clock steps"
        );
    }
    let Some(promtool) = tool("promtool", "CI") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The same run judged from the collector's history and from a real Prometheus scraping
/// the collector: over a window holding the whole run, the exact counters make the counts
/// equal; a threshold the collector was not told about falls back to the classic buckets,
/// whose straddling band must contain the history's exact count.
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
    let _collector = spawn_collector(
        &dir,
        addr,
        &format!("slo = \"{}\"\nslo_interval = \"1s\"\n", slo_file.display()),
    );
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
    let from = format!("{:.3}", unix_now() - 1.0);
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
    // Two scrapes after the last snapshot, so Prometheus holds the final counts.
    std::thread::sleep(Duration::from_secs(3));
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
    let (c_code, c) = run(&slo_file, &["--collector", &collector_url]);
    let (p_code, p) = run(&slo_file, &["--prometheus", &prom_url]);
    eprintln!("collector: {c}\nprometheus: {p}");
    assert_eq!((c_code, p_code), (0, 0), "both pass");
    for i in 0..3 {
        let (a, b) = (&c["objectives"][i], &p["objectives"][i]);
        assert_eq!(a["verdict"], b["verdict"], "{}", a["name"]);
        assert_eq!(
            a["samples"], b["samples"],
            "{}: exact counts agree",
            a["name"]
        );
        assert_eq!(a["observed"], b["observed"], "{}", a["name"]);
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
    let (_, p) = run(&unknown, &["--prometheus", &prom_url]);
    let (a, b) = (&c["objectives"][0], &p["objectives"][0]);
    eprintln!("45us: collector {a}\nprometheus {b}");
    assert_eq!(a["samples"], b["samples"]);
    let n = a["samples"].as_f64().unwrap();
    let exact = a["observed"].as_f64().unwrap() * n;
    let certain = b["observed"].as_f64().unwrap() * n;
    let reasons = b["reasons"].to_string();
    assert!(reasons.contains("classic buckets"), "{reasons}");
    assert!(
        certain <= exact + 0.5,
        "bucket count {certain} above the exact {exact}"
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
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `--measure`: no collector; the gate runs the agent of a configuration toward its peer
/// (a reflector in another process) and judges what it measured.
#[test]
fn gate_measure_probes_the_peers_itself() {
    let _turn = machine::shared();
    let dir = TempDir::new("gate-measure");
    let (a, b): (SocketAddr, SocketAddr) = (
        ([127, 0, 0, 1], free_udp_port()).into(),
        ([127, 0, 0, 1], free_udp_port()).into(),
    );
    // Nobody collects for the far side: its reports go nowhere, which it survives.
    let nowhere = format!("http://127.0.0.1:{}", free_tcp_port());
    let far = dir.write(
        "oci.toml",
        &crate::support::agents::agent_toml("oci-1", "oci", b, &nowhere, &[], "5ms"),
    );
    let _reflector = crate::support::proc::Proc::spawn(
        "oci agent",
        Command::new(bin()).args(["agent", "--config"]).arg(&far),
    );
    let near = dir.write(
        "az.toml",
        &crate::support::agents::agent_toml(
            "az-1",
            "azure",
            a,
            &nowhere,
            &[("oci-1", "oci", b)],
            "5ms",
        ),
    );
    let slo_file = dir.write("slo.yaml", &slo(&[PASS, FAIL]));
    std::thread::sleep(Duration::from_millis(500));
    let (code, out, err) = gate(
        &[
            "--slo",
            slo_file.to_str().unwrap(),
            "--measure",
            "5s",
            "-c",
            near.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    eprintln!("{out}\n{err}");
    assert_eq!(code, 1, "the 1 us objective fails\n{err}");
    let v = verdicts(&out);
    let names: Vec<(&str, &str)> = v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        names,
        [
            ("loss", "pass"),
            ("rtt-p99", "pass"),
            ("rtt-p50-1us", "fail")
        ]
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n = json["objectives"][0]["samples"].as_u64().unwrap();
    // 5 s at 5 ms: about 1,000 probes (the first ones wait for the sockets).
    assert!((800..=1_100).contains(&n), "{n} probes");
    assert!(
        json["source"]
            .as_str()
            .unwrap()
            .starts_with("measured 5s toward the peers of "),
        "{}",
        json["source"]
    );
}
