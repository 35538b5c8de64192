//! The gate on a live loopback pair: verdicts and exit codes, the JSON, JUnit and GitHub
//! Actions outputs, and the HTML report as headless Chromium draws it.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{gate, slo, verdicts, FAIL, INCONCLUSIVE, ONE_SECOND_SLOTS, PASS};
use crate::support::agents::{spawn_collector, spawn_pair};
use crate::support::http::http_get;
use crate::support::ports::{free_tcp_port, free_udp_port};
use crate::support::proc::{bin, TempDir};
use crate::support::{machine, tool, wait_for};

#[test]
fn gate_judges_a_live_pair_and_exits_by_verdict() {
    let _turn = machine::shared();
    let dir = TempDir::new("gate");
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let data = dir.path().join("data");
    let _collector = spawn_collector(
        &dir,
        addr,
        &format!("data_dir = \"{}\"\n{ONE_SECOND_SLOTS}", data.display()),
    );
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
    // After 9 s of probes the 8 s window is covered (but its first 1 s slot, which holds a
    // report measured from before the window).
    wait_for(Duration::from_secs(30), || {
        let (_, body) = http_get(addr, "/api/v1/history?src_agent=az-1&kind=stamp&from=0")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (started.elapsed() > Duration::from_secs(9) && v["counters"]["received"].as_u64()? > 1_200)
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
