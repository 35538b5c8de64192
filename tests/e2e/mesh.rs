//! The mesh file with the real binary: `xcbench mesh check` (the sample's report as the
//! golden file has it, exit 2 for a broken mesh); a collector serving a mesh to agents that
//! know only their id and its URL, probing each other, then following changes of the file
//! without a restart (a third agent joins; a broken change is not served); an agent the
//! mesh does not list, and a collector with no mesh, stop an agent with exit code 2. The
//! same over HTTPS, as deployed: the mesh fetched by the collector's pin, the agents' own
//! fingerprints in it pinned by the collector for their reports.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::agents::spawn_collector;
use crate::support::http::{http_get, http_get_with};
use crate::support::https::https;
use crate::support::machine;
use crate::support::metrics::{parse_metrics, sample};
use crate::support::ports::{free_tcp_port, free_udp_port};
use crate::support::proc::{bin, terminate_all, Proc, TempDir};
use crate::support::tls::{tls_identity, tls_identity_of_collector, tls_section};
use crate::support::{repo_path, wait_for};

#[test]
fn mesh_check_prints_the_sample_and_refuses_a_broken_mesh() {
    let _turn = machine::shared();
    let out = Command::new(bin())
        .args(["mesh", "check", "deploy/mesh.sample.toml"])
        .current_dir(repo_path(""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let golden = std::fs::read_to_string(repo_path("tests/golden/mesh_check.txt")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), golden);

    let dir = TempDir::new("mesh-check");
    let sample = std::fs::read_to_string(repo_path("deploy/mesh.sample.toml")).unwrap();
    let broken = dir.write(
        "mesh.toml",
        &sample.replace(
            "[\"10.20.0.0/16\"]",
            "[\"10.20.0.0/16\", \"10.10.128.0/17\"]",
        ),
    );
    let out = Command::new(bin())
        .args(["mesh", "check"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mesh.toml: oci.address_space[1] = \"10.10.128.0/17\": must not overlap azure.address_space[0] = \"10.10.0.0/16\""),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// A loopback mesh: az-1 on 127.0.0.1 (azure), oci agents on 127.0.0.2 and .3 (oci),
/// probing over UDP and TCP every 20 ms, reporting every 300 ms.
fn loopback_mesh(collector: SocketAddr, agents: &[(&str, &str, SocketAddr)]) -> String {
    let mut t = format!(
        "[mesh]\ncollector = \"http://{collector}\"\nreport_interval = \"300ms\"\nallow_loopback = true\n\n[mesh.probe]\ninterval = \"20ms\"\nloss_timeout = \"500ms\"\nprotocols = [\"udp\", \"tcp\"]\n"
    );
    for (cloud, space) in [("azure", "127.0.0.1/32"), ("oci", "127.0.0.2/31")] {
        t.push_str(&format!("\n[{cloud}]\naddress_space = [\"{space}\"]\n"));
        for (id, _, addr) in agents.iter().filter(|a| a.1 == cloud) {
            t.push_str(&format!(
                "\n[[{cloud}.agents]]\nid = \"{id}\"\nregion = \"r-{cloud}\"\naddress = \"{addr}\"\n"
            ));
        }
    }
    t
}

/// An agent that knows only its id and where the mesh is.
fn spawn_agent(dir: &TempDir, id: &str, mesh_url: &str) -> Proc {
    spawn_agent_with(dir, id, mesh_url, "")
}

/// As [`spawn_agent`], with `more` after the `[agent]` lines (a pin, a `[tls]` section).
fn spawn_agent_with(dir: &TempDir, id: &str, mesh_url: &str, more: &str) -> Proc {
    let cfg = dir.write(
        &format!("{id}.toml"),
        &format!("[agent]\nid = \"{id}\"\nmesh = \"{mesh_url}\"\n{more}"),
    );
    Proc::spawn(
        id,
        Command::new(bin()).args(["agent", "--config"]).arg(&cfg),
    )
}

/// Runs an agent that must stop at start: its output.
fn failed_agent(dir: &TempDir, id: &str, mesh_url: &str) -> Output {
    let cfg = dir.write(
        &format!("{id}.toml"),
        &format!("[agent]\nid = \"{id}\"\nmesh = \"{mesh_url}\"\n"),
    );
    let mut p = Proc::spawn(
        id,
        Command::new(bin()).args(["agent", "--config"]).arg(&cfg),
    );
    wait_for(Duration::from_secs(15), || {
        p.child.try_wait().ok().flatten()
    })
    .unwrap_or_else(|| panic!("{id} did not stop"));
    p.terminate(Duration::from_secs(1))
}

/// `xcbench_probes_received_total` of one direction of UDP (STAMP), once above zero.
fn received(addr: SocketAddr, src: &str, dst: &str) -> Option<f64> {
    let (_, text) = http_get(addr, "/metrics")?;
    let m = parse_metrics(&text);
    let (s, d) = (
        format!("src_agent=\"{src}\""),
        format!("dst_agent=\"{dst}\""),
    );
    sample(
        &m,
        "xcbench_probes_received_total",
        &[&s, &d, "protocol=\"udp\"", "load=\"idle\""],
    )
    .filter(|v| *v > 0.0)
}

/// The agents `xcbench_mesh_agent_info` lists.
fn listed(addr: SocketAddr) -> Vec<String> {
    let (_, text) = http_get(addr, "/metrics").expect("/metrics");
    text.lines()
        .filter(|l| l.starts_with("xcbench_mesh_agent_info{"))
        .filter_map(|l| l.split("agent=\"").nth(1)?.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn agents_take_their_peers_from_the_collectors_mesh_and_follow_its_changes() {
    let _turn = machine::shared();
    let dir = TempDir::new("mesh");
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let at = |last: u8| -> SocketAddr { ([127, 0, 0, last], free_udp_port()).into() };
    let (a, b, c) = (at(1), at(2), at(3));
    let two = [("az-1", "azure", a), ("oci-1", "oci", b)];
    let mesh_path = dir.write("mesh.toml", &loopback_mesh(addr, &two));
    let collector = spawn_collector(&dir, addr, &format!("mesh = \"{}\"\n", mesh_path.display()));
    wait_for(Duration::from_secs(10), || {
        http_get(addr, "/healthz").filter(|r| r.0 == 200)
    })
    .expect("collector healthz");

    // Served with an ETag; asked again with it, not served again.
    let (status, head, body) = http_get_with(addr, "/api/v1/mesh", &[]).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, std::fs::read_to_string(&mesh_path).unwrap());
    let etag = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("etag")
                .then(|| value.trim().to_owned())
        })
        .expect("an ETag");
    let (status, _, body) =
        http_get_with(addr, "/api/v1/mesh", &[("If-None-Match", &etag)]).unwrap();
    assert_eq!((status, body.as_str()), (304, ""));
    assert_eq!(listed(addr), ["az-1", "oci-1"]);

    let url = format!("http://{addr}/api/v1/mesh");
    let mut agents = vec![
        spawn_agent(&dir, "az-1", &url),
        spawn_agent(&dir, "oci-1", &url),
    ];
    for (src, dst) in [("az-1", "oci-1"), ("oci-1", "az-1")] {
        wait_for(Duration::from_secs(15), || received(addr, src, dst))
            .unwrap_or_else(|| panic!("{src} -> {dst}: no replies"));
    }
    let (_, text) = http_get(addr, "/metrics").unwrap();
    assert!(
        text.contains("src_agent=\"az-1\",src_cloud=\"azure\",src_region=\"r-azure\",dst_agent=\"oci-1\",dst_cloud=\"oci\",dst_region=\"r-oci\",protocol=\"tcp\",kind=\"rr\""),
        "labels from the mesh, TCP from [mesh.probe]"
    );

    // A third agent joins: the collector serves the new file, the running agents take it.
    let three = [two[0], two[1], ("oci-2", "oci", c)];
    std::fs::write(&mesh_path, loopback_mesh(addr, &three)).unwrap();
    wait_for(Duration::from_secs(10), || {
        (listed(addr).len() == 3).then_some(())
    })
    .expect("xcbench_mesh_agent_info lists the third agent");
    agents.push(spawn_agent(&dir, "oci-2", &url));
    for (src, dst) in [("az-1", "oci-2"), ("oci-2", "az-1"), ("az-1", "oci-1")] {
        wait_for(Duration::from_secs(15), || received(addr, src, dst))
            .unwrap_or_else(|| panic!("{src} -> {dst}: no replies after the change"));
    }
    let (_, text) = http_get(addr, "/metrics").unwrap();
    assert!(
        !text.contains(
            "src_agent=\"oci-1\",src_cloud=\"oci\",src_region=\"r-oci\",dst_agent=\"oci-2\""
        ),
        "same_side is off: oci agents do not probe each other"
    );
    for p in &mut agents {
        assert!(
            p.child.try_wait().unwrap().is_none(),
            "{} restarted",
            p.name
        );
    }

    // A broken change is not served: the last good mesh stays.
    let good = std::fs::read_to_string(&mesh_path).unwrap();
    std::fs::write(&mesh_path, good.replace("127.0.0.2/31", "127.0.0.0/8")).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(http_get(addr, "/api/v1/mesh").unwrap().1, good);

    // An id the mesh does not list: exit 2, naming the ids that are there.
    let out = failed_agent(&dir, "az-9", &url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("agent.id = \"az-9\": must be the id of an agent in {url} (azure: az-1; oci: oci-1, oci-2)")),
        "{stderr}"
    );
    terminate_all(agents);
    drop(collector);
}

#[test]
fn a_collector_without_a_mesh_answers_404_and_the_agent_stops() {
    let _turn = machine::shared();
    let dir = TempDir::new("mesh-none");
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let _collector = spawn_collector(&dir, addr, "");
    wait_for(Duration::from_secs(10), || {
        http_get(addr, "/healthz").filter(|r| r.0 == 200)
    })
    .expect("collector healthz");
    assert_eq!(http_get(addr, "/api/v1/mesh").unwrap().0, 404);
    let url = format!("http://{addr}/api/v1/mesh");
    let out = failed_agent(&dir, "az-1", &url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "agent.mesh = \"{url}\": the collector answered HTTP 404: no mesh file"
        )),
        "{stderr}"
    );
    // Nothing listening at all: exit 1 (a matter of time), within the fetch timeout.
    let closed = format!("http://127.0.0.1:{}/api/v1/mesh", free_tcp_port());
    let out = failed_agent(&dir, "az-2", &closed);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot fetch"), "{stderr}");
}

#[test]
fn agents_fetch_the_mesh_over_https_and_report_by_its_pins() {
    let _turn = machine::shared();
    let dir = TempDir::new("mesh-tls");
    let addr: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let (a, b): (SocketAddr, SocketAddr) = (
        ([127, 0, 0, 1], free_udp_port()).into(),
        ([127, 0, 0, 2], free_udp_port()).into(),
    );
    let (fp_az, fp_oci) = (tls_identity(&dir, "az-1"), tls_identity(&dir, "oci-1"));
    // The collector's key pair first (its pin goes into the mesh it serves), then the
    // collector with the mesh: no pins of its own, the mesh's agent fingerprints are them.
    let keys = format!(
        "\n[tls]\ndir = \"{}\"\n",
        dir.path().join("collector-keys").display()
    );
    let pin = tls_identity_of_collector(
        &dir.write("identity.toml", &format!("listen = \"{addr}\"\n{keys}")),
    );
    let pin_fp: xcbench_agent::tls::Fingerprint = pin.parse().unwrap();
    let mesh = loopback_mesh(addr, &[("az-1", "azure", a), ("oci-1", "oci", b)])
        .replace(
            &format!("collector = \"http://{addr}\"\n"),
            &format!("collector = \"https://{addr}\"\ncollector_fingerprint = \"{pin}\"\n"),
        )
        .replace(
            "id = \"az-1\"\n",
            &format!("id = \"az-1\"\nfingerprint = \"{fp_az}\"\n"),
        )
        .replace(
            "id = \"oci-1\"\n",
            &format!("id = \"oci-1\"\nfingerprint = \"{fp_oci}\"\n"),
        );
    let mesh_path = dir.write("mesh.toml", &mesh);
    let ccfg = dir.write(
        "collector.toml",
        &format!(
            "listen = \"{addr}\"\nmesh = \"{}\"\n{keys}",
            mesh_path.display()
        ),
    );
    let _collector = Proc::spawn(
        "collector",
        Command::new(bin())
            .args(["collector", "--config"])
            .arg(&ccfg),
    );
    let get = |path: &str| https(addr, "GET", path, b"", pin_fp, None).ok();
    wait_for(Duration::from_secs(10), || {
        get("/healthz").filter(|r| r.0 == 200)
    })
    .expect("the collector answers over HTTPS");
    assert_eq!(get("/api/v1/mesh").unwrap(), (200, mesh));

    // Each agent knows its id, the mesh's URL and the collector's pin, and has its key pair.
    let url = format!("https://{addr}/api/v1/mesh");
    let more = |id: &str| {
        format!(
            "mesh_fingerprint = \"{pin}\"\n{}",
            tls_section(&dir, id, &[])
        )
    };
    let agents = vec![
        spawn_agent_with(&dir, "az-1", &url, &more("az-1")),
        spawn_agent_with(&dir, "oci-1", &url, &more("oci-1")),
    ];
    let metrics = || {
        let (status, text) = get("/metrics")?;
        (status == 200).then(|| parse_metrics(&text))
    };
    for (src, dst) in [("az-1", "oci-1"), ("oci-1", "az-1")] {
        let (s, d) = (
            format!("src_agent=\"{src}\""),
            format!("dst_agent=\"{dst}\""),
        );
        wait_for(Duration::from_secs(15), || {
            sample(
                &metrics()?,
                "xcbench_probes_received_total",
                &[&s, &d, "protocol=\"udp\"", "load=\"idle\""],
            )
            .filter(|v| *v > 0.0)
        })
        .unwrap_or_else(|| panic!("{src} -> {dst}: no replies reported over HTTPS"));
    }
    let m = metrics().unwrap();
    let snapshots = |result: &str| {
        sample(
            &m,
            "xcbench_collector_snapshots_total",
            &[&format!("result=\"{result}\"")],
        )
        .unwrap_or(0.0)
    };
    let (accepted, forbidden) = (snapshots("accepted"), snapshots("forbidden"));
    eprintln!("mesh over HTTPS: {accepted} snapshots accepted, {forbidden} forbidden");
    assert!(
        accepted >= 2.0 && forbidden == 0.0,
        "{accepted} {forbidden}"
    );

    // An agent pinning some other certificate for the collector never takes its mesh.
    let wrong = format!(
        "mesh_fingerprint = \"{fp_az}\"\n{}",
        tls_section(&dir, "oci-1", &[])
    );
    let mut p = spawn_agent_with(&dir, "oci-9", &url, &wrong);
    let code = wait_for(Duration::from_secs(15), || {
        p.child.try_wait().ok().flatten()
    })
    .expect("an agent with the wrong pin stopped");
    let out = p.terminate(Duration::from_secs(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "wrong pin: exit {:?}: {}",
        code.code(),
        stderr
            .lines()
            .rfind(|l| l.contains("cannot fetch"))
            .unwrap_or("")
    );
    assert!(!code.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("agent.mesh = \"{url}\": cannot fetch")),
        "{stderr}"
    );
    // The refusal names both certificates: the one the collector showed, the one pinned.
    assert!(
        stderr.contains(&format!(
            "the peer's certificate is {pin}, not the pinned {fp_az}, and no CA is configured (tls.ca)"
        )),
        "{stderr}"
    );
    terminate_all(agents);
}
