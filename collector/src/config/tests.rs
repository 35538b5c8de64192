//! collector.toml: defaults, values, and errors that name the file, the field and what was
//! expected.

use super::*;

#[test]
fn defaults_and_errors() {
    assert_eq!(
        CollectorConfig::parse("c.toml", "").unwrap(),
        CollectorConfig::default()
    );
    let c = CollectorConfig::parse("c.toml", "window = \"1m\"\nwindow_slot = \"5s\"").unwrap();
    assert_eq!((c.window.as_secs(), c.window_slot.as_secs()), (60, 5));
    let c = CollectorConfig::parse(
        "c.toml",
        "exposition = \"full\"\nwindow_summaries = [\"ipdv_forward\", \"rtt\"]",
    )
    .unwrap();
    assert_eq!(c.exposition.exposition, crate::exposition::Exposition::Full);
    assert_eq!(
        c.exposition.window_summaries,
        [
            xcbench_snapshot::Metric::Rtt,
            xcbench_snapshot::Metric::IpdvForward
        ]
        .into()
    );
    assert_eq!(
        CollectorConfig::parse("c.toml", "exposition = \"slim\"")
            .unwrap_err()
            .to_string(),
        "c.toml: exposition = \"slim\": must be \"lean\" (what the shipped dashboards, rules and gate read) or \"full\" (also every metric's window summary)"
    );
    let native = CollectorConfig::parse(
        "c.toml",
        "native_histograms = \"replace\"\nnative_histogram_error = \"5%\"",
    )
    .unwrap();
    assert_eq!(
        native.exposition.native,
        crate::exposition::Native::Replace { schema: 3 }
    );
    assert_eq!(
        CollectorConfig::parse("c.toml", "native_histograms = \"both\"")
            .unwrap_err()
            .to_string(),
        "c.toml: native_histograms = \"both\": must be \"off\", \"beside\" (native and classic buckets under one name, for a Prometheus that keeps both) or \"replace\" (native only, to protobuf scrapers)"
    );
    assert_eq!(
        CollectorConfig::parse("c.toml", "native_histogram_error = \"0.1%\"")
            .unwrap_err()
            .to_string(),
        "c.toml: native_histogram_error = \"0.1%\": must be at least 0.14% (schema 8, the finest, keeps a value within 0.135%)"
    );
    let rw = CollectorConfig::parse(
        "c.toml",
        "[remote_write]\nurl = \"https://mimir:8080/api/v1/push\"\nca = \"/etc/ca.pem\"\norg_id = \"team-a\"\nmax_samples_per_send = 2000\nmax_queue_mb = 64\nretry_on_429 = true\nbasic_auth = { username = \"u\", password_file = \"/etc/pw\" }\n",
    )
    .unwrap()
    .remote_write
    .unwrap();
    assert_eq!(
        (
            rw.max_samples_per_send,
            rw.max_queue_bytes,
            rw.retry_on_429,
            rw.org_id.as_deref()
        ),
        (2000, 64 << 20, true, Some("team-a"))
    );
    let rw_err = |t: &str| {
        CollectorConfig::parse("c.toml", &format!("[remote_write]\n{t}"))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        rw_err("max_samples_per_send = 500"),
        "c.toml: remote_write.url = (missing): must be the receiver's write endpoint, e.g. \"http://prometheus:9090/api/v1/write\""
    );
    assert_eq!(
        rw_err("url = \"prometheus:9090\""),
        "c.toml: remote_write.url = \"prometheus:9090\": must be an http:// or https:// URL, e.g. \"http://prometheus:9090/api/v1/write\""
    );
    assert_eq!(
        rw_err("url = \"https://mimir/api/v1/push\""),
        "c.toml: remote_write.url = \"https://mimir/api/v1/push\": is https://: set remote_write.ca, the PEM CA certificates the receiver is checked against"
    );
    assert_eq!(
        rw_err("url = \"http://p/w\"\nmax_samples_per_send = 0"),
        "c.toml: remote_write.max_samples_per_send = 0: must be 1 to 100000"
    );
    assert_eq!(
        rw_err("url = \"http://p/w\"\nbearer_token_file = \"/t\"\nbasic_auth = { username = \"u\", password_file = \"/p\" }"),
        "c.toml: remote_write.bearer_token_file = \"/t\": must not be set with basic_auth: a request carries one Authorization"
    );
    assert_eq!(
        rw_err("url = \"http://p/w\"\norg_id = \"a b\""),
        "c.toml: remote_write.org_id = \"a b\": must be a tenant id of visible ASCII characters"
    );
    assert_eq!(
        rw_err("url = \"http://p/w\"\nhistograms = \"exponential\""),
        "c.toml: remote_write.histograms = \"exponential\": must be \"classic\" (_bucket, _sum and _count: every receiver) or \"native\" (one native histogram each: Prometheus 2.40+ with native histograms enabled, Mimir)"
    );
    // Native remote write counts into native buckets at native_histogram_error's schema,
    // whether or not /metrics serves them.
    let native = CollectorConfig::parse(
        "c.toml",
        "native_histogram_error = \"5%\"\n[remote_write]\nurl = \"http://p/w\"\nhistograms = \"native\"",
    )
    .unwrap();
    assert_eq!(
        native.remote_write.as_ref().map(|w| w.histograms),
        Some(crate::remote_write::Histograms::Native)
    );
    assert_eq!(native.exposition.native, crate::exposition::Native::Off);
    assert_eq!(native.native_schema(), Some(3));
    let e = CollectorConfig::parse("c.toml", "window_summaries = [\"rtt\", \"owd\"]")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("c.toml: window_summaries[1] = \"owd\": must be a latency metric: "),
        "{e}"
    );
    assert_eq!(
        CollectorConfig::parse("c.toml", "listen = \"nope\"")
            .unwrap_err()
            .to_string(),
        "c.toml: listen = \"nope\": must be IP:port, e.g. \"0.0.0.0:9862\""
    );
    assert_eq!(
        CollectorConfig::parse("c.toml", "max_series = 0")
            .unwrap_err()
            .to_string(),
        "c.toml: max_series = 0: must be 1 to 10000000"
    );
    let h = CollectorConfig::parse(
        "c.toml",
        "data_dir = \"/var/lib/xcbench\"\nhistory = [{ slot = \"10s\", keep = \"1h\" }, { slot = \"1m\", keep = \"30d\" }]",
    )
    .unwrap();
    assert_eq!(h.data_dir, Some(PathBuf::from("/var/lib/xcbench")));
    assert_eq!(h.history.get().len(), 2);
    assert_eq!(
        CollectorConfig::parse("c.toml", "history = [{ slot = \"10s\", keep = \"1h\" }, { slot = \"15s\", keep = \"2h\" }]")
            .unwrap_err()
            .to_string(),
        "c.toml: history = 2 tiers: tier 1: its slot must be a whole multiple of the previous tier's, and kept at least as long"
    );
    assert_eq!(
        CollectorConfig::parse("c.toml", "history = [{ slot = \"soon\", keep = \"1h\" }]")
            .unwrap_err()
            .to_string(),
        "c.toml: history[0].slot = \"soon\": must be a duration such as \"10s\", \"1m\" or \"90d\""
    );
    let slo = concat!(env!("CARGO_MANIFEST_DIR"), "/../slo/slo.sample.yaml");
    let c = CollectorConfig::parse(
        "c.toml",
        &format!("slo = \"{slo}\"\nslo_interval = \"10s\""),
    )
    .unwrap();
    assert_eq!(c.slo.map(|f| f.objectives.len()), Some(15));
    assert_eq!(c.slo_interval, Duration::from_secs(10));
    let missing = CollectorConfig::parse("c.toml", "slo = \"/nonexistent/slo.yaml\"")
        .unwrap_err()
        .to_string();
    assert_eq!(
        missing,
        "c.toml: slo = \"/nonexistent/slo.yaml\": must be an SLO file that can be read: No such file or directory (os error 2)"
    );
    assert_eq!(
        CollectorConfig::parse("c.toml", "slo_interval = \"0s\"")
            .unwrap_err()
            .to_string(),
        "c.toml: slo_interval = \"0s\": must be a duration from 1s to 1h, e.g. \"30s\""
    );
    let mesh = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/mesh.sample.toml");
    let c = CollectorConfig::parse("c.toml", &format!("mesh = \"{mesh}\"")).unwrap();
    assert_eq!(c.mesh, Some(PathBuf::from(mesh)));
    let missing = CollectorConfig::parse("c.toml", "mesh = \"/nonexistent/mesh.toml\"")
        .unwrap_err()
        .to_string();
    assert_eq!(
        missing,
        "c.toml: mesh = \"/nonexistent/mesh.toml\": must be a mesh file that can be read: No such file or directory (os error 2)"
    );
    // Off loopback: mutual TLS, or plain HTTP only on purpose.
    assert_eq!(
        CollectorConfig::parse("c.toml", "listen = \"0.0.0.0:9862\"")
            .unwrap_err()
            .to_string(),
        "c.toml: listen = \"0.0.0.0:9862\": is not loopback: set [tls] (agents then report over mutual TLS, each only in its own name), or plain_http = true to take unauthenticated snapshots from anyone who reaches the port"
    );
    let plain =
        CollectorConfig::parse("c.toml", "listen = \"0.0.0.0:9862\"\nplain_http = true").unwrap();
    assert!(plain.plain_http && plain.tls.is_none());
    let fp = "sha256:9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab";
    let tls = CollectorConfig::parse(
        "c.toml",
        &format!("listen = \"0.0.0.0:9862\"\n[tls]\ndir = \"/var/lib/x\"\nagents = {{ \"az-1\" = \"{fp}\" }}"),
    )
    .unwrap()
    .tls
    .unwrap();
    assert_eq!(tls.key, KeySource::Dir("/var/lib/x".into()));
    assert_eq!(
        tls.agents,
        vec![("az-1".parse().unwrap(), fp.parse().unwrap())]
    );
    for (text, want) in [
        ("[tls]", "c.toml: tls = {}: must set dir (a key pair generated at first start) or cert and key (PEM files)"),
        ("[tls]\ncert = \"c.pem\"", "c.toml: tls.cert = \"c.pem\": needs tls.key beside it"),
        ("[tls]\ndir = \"d\"\nagents = { \"az-1\" = \"sha256:00\" }", "c.toml: tls.agents.az-1 = \"sha256:00\": must be \"sha256:\" followed by 64 hex digits"),
    ] {
        assert_eq!(CollectorConfig::parse("c.toml", text).unwrap_err().to_string(), want);
    }
    assert!(CollectorConfig::parse("c.toml", "windw = \"1m\"")
        .unwrap_err()
        .to_string()
        .starts_with("c.toml: windw = \"1m\": is not a field here (line 1): expected one of listen, window, "));
}

/// Issue 21: contradictions and ranges named; the files `[tls]` names checked at load;
/// an SLO file nested deep refused fast; errors in arrays of tables placed.
#[test]
// How fast the refusal is: the one clock read here.
#[allow(clippy::disallowed_methods)]
fn issue_21_refusals() {
    let err = |text: &str| {
        CollectorConfig::parse("c.toml", text)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("listen = \"0.0.0.0:9862\"\nplain_http = true\n[tls]\ndir = \"/var/lib/x\"\n"),
        "c.toml: plain_http = true: must not be set with [tls]: the collector then serves HTTPS only (remove plain_http, or [tls] to serve plain HTTP)"
    );
    assert_eq!(
        err("listen = \"127.0.0.1:70000\""),
        "c.toml: listen = \"127.0.0.1:70000\": must be IP:port with a port of at most 65535: 70000 is not a port, e.g. \"0.0.0.0:9862\" or \"[::]:9862\""
    );
    assert_eq!(
        err("history = [\n  { slot = \"10s\", keep = \"1h\" },\n  { slot = 5, keep = \"2h\" },\n]\n"),
        "c.toml: history[1].slot = 5: must be a string in quotes (line 3)"
    );
    assert_eq!(
        err("max_series = \"many\""),
        "c.toml: max_series = \"many\": must be an integer (line 1)"
    );

    let dir = std::env::temp_dir().join(format!("xcbench-collector-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    let load = |text: &str| {
        let path = dir.join("collector.toml");
        std::fs::write(&path, text).unwrap();
        CollectorConfig::load(&path)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        load(&format!("[tls]\ncert = \"{d}/c.pem\"\nkey = \"{d}/c.key\"\n")),
        Err(format!("{d}/collector.toml: tls.cert = \"{d}/c.pem\": must be a readable PEM file: No such file or directory (os error 2)"))
    );
    std::fs::write(dir.join("file"), "").unwrap();
    assert_eq!(
        load(&format!("[tls]\ndir = \"{d}/file\"\n")),
        Err(format!("{d}/collector.toml: tls.dir = \"{d}/file\": must be a directory (the agent.crt and agent.key pair is kept there, generated at first start): it is a file"))
    );
    let deep = dir.join("deep.yaml");
    std::fs::write(
        &deep,
        format!(
            "version: 1\nobjectives: {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        load(&format!("slo = \"{}\"\n", deep.display())),
        Err(format!("{}: line 2 (under objectives): nested deeper than 32 levels of [ and {{ (an SLO file needs two or three): refused before parsing", deep.display()))
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    std::fs::remove_dir_all(&dir).unwrap();
}
