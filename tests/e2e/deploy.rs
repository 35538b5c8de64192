//! The deploy scripts with stand-in `az` and `oci` executables on PATH that record their
//! arguments (and answer with `NAME.reply` when a test writes one): a dry run prints and calls
//! nothing; `--run` makes the NSG rules and the instance with the rendered cloud-init, which
//! Debian's `cloud-init schema` validates, stays under OCI's 32,000-byte metadata limit
//! base64-encoded, and carries the mesh byte for byte and the key pair with private
//! permissions. Agents sharing an NSG make the same rules (Azure: same names and priorities;
//! OCI: added once). A port changed in a mesh moves `mesh check`, `mesh rules`, the scripts'
//! rules and preflight alike: the scripts ask the binary (`xcbench mesh rules`, `mesh agent`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::machine;
use crate::support::proc::{bin, TempDir};
use crate::support::tls::{tls_identity, tls_section};
use crate::support::{repo_path, tool};

/// A directory with `az` and `oci` that append their arguments (one call a line, arguments
/// joined by a unit separator) to `calls.log`, and print `az.reply` or `oci.reply` when the
/// test has written one (else `{}`).
fn stand_ins(dir: &TempDir) -> PathBuf {
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["az", "oci"] {
        let path = bin.join(name);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\n{{ printf '{name}'; for a in \"$@\"; do printf '\\037%s' \"$a\"; done; printf '\\n'; }} >> '{log}'\nif [ -f '{reply}' ]; then cat '{reply}'; else echo '{{}}'; fi\n",
                log = dir.path().join("calls.log").display(),
                reply = dir.path().join(format!("{name}.reply")).display(),
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

fn calls(dir: &TempDir) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir.path().join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\u{1f}').map(str::to_owned).collect())
        .collect()
}

/// Runs `scripts/deploy/NAME` in `dir` with the stand-ins first on PATH: whether it
/// succeeded, and its stdout then stderr.
fn run_script(dir: &TempDir, bin: &Path, name: &str, args: &[&str]) -> (bool, String) {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(repo_path(&format!("scripts/deploy/{name}")))
        .args(args)
        .env("PATH", path)
        .env("XCBENCH", crate::support::proc::bin())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `run_script`, which must succeed.
fn script(dir: &TempDir, bin: &Path, name: &str, args: &[&str]) -> String {
    let (ok, text) = run_script(dir, bin, name, args);
    assert!(ok, "{name} {args:?}: {text}");
    text
}

fn arg<'a>(call: &'a [String], name: &str) -> &'a str {
    let i = call
        .iter()
        .position(|a| a == name)
        .unwrap_or_else(|| panic!("{name} missing: {call:?}"));
    &call[i + 1]
}

/// Every value after `name` up to the next option: az takes a list as separate arguments.
fn values<'a>(call: &'a [String], name: &str) -> Vec<&'a str> {
    let i = call
        .iter()
        .position(|a| a == name)
        .unwrap_or_else(|| panic!("{name} missing: {call:?}"));
    call[i + 1..]
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect()
}

const URL: &str = "https://packages.example.invalid/xcbench_0.1.0_amd64.deb";

/// The sample mesh with a second OCI block and custom STAMP ports (8862) on az-eastus-app2
/// and oci-ashburn-db2.
fn test_mesh() -> String {
    let mut text = std::fs::read_to_string(repo_path("deploy/mesh.sample.toml")).unwrap();
    for (from, to) in [
        (
            "address_space = [\"10.20.0.0/16\"]",
            "address_space = [\"10.20.0.0/16\", \"10.21.0.0/16\"]",
        ),
        (
            "address = \"10.10.1.5\"\n",
            "address = \"10.10.1.5:8862\"\n",
        ),
        (
            "address = \"10.20.1.11\"\n",
            "address = \"10.20.1.11:8862\"\n",
        ),
    ] {
        assert_eq!(
            text.matches(from).count(),
            1,
            "deploy/mesh.sample.toml changed: {from:?}"
        );
        text = text.replace(from, to);
    }
    text
}

fn azure_args<'a>(mesh: &'a str, id: &'a str) -> Vec<&'a str> {
    vec![
        "--mesh",
        mesh,
        "--id",
        id,
        "--package-url",
        URL,
        "--resource-group",
        "rg-app",
        "--vnet",
        "vnet-app",
        "--subnet",
        "snet-app",
        "--nsg",
        "nsg-app",
    ]
}

fn oci_args<'a>(mesh: &'a str, id: &'a str) -> Vec<&'a str> {
    vec![
        "--mesh",
        mesh,
        "--id",
        id,
        "--package-url",
        URL,
        "--compartment-id",
        "ocid1.compartment.oc1..x",
        "--availability-domain",
        "Uocm:US-ASHBURN-AD-1",
        "--subnet-id",
        "ocid1.subnet.oc1..x",
        "--nsg-id",
        "ocid1.nsg.oc1..x",
        "--image-id",
        "ocid1.image.oc1..x",
    ]
}

#[test]
fn deploy_scripts_launch_both_sides_with_a_valid_cloud_init() {
    let _turn = machine::shared();
    let dir = TempDir::new("deploy");
    let bin = stand_ins(&dir);
    let mesh = repo_path("deploy/mesh.sample.toml");
    let mesh_s = mesh.to_str().unwrap();
    let azure = azure_args(mesh_s, "az-eastus-app1");
    // A dry run prints every command and calls none.
    let printed = script(&dir, &bin, "azure-vm", &azure);
    assert!(calls(&dir).is_empty(), "a dry run called {:?}", calls(&dir));
    assert_eq!(
        printed.matches("az network nsg rule create").count(),
        7,
        "{printed}"
    );
    assert!(printed.contains("az vm create"), "{printed}");

    // Keys made before launch, so the mesh can pin them.
    tls_identity(&dir, "az-eastus-app1");
    let keys = dir.path().join("keys-az-eastus-app1");
    let mut run = azure.clone();
    run.extend(["--keys", keys.to_str().unwrap(), "--run"]);
    let said = script(&dir, &bin, "azure-vm", &run);
    assert!(
        said.contains(" in base64 (limits"),
        "the cloud-init's sizes: {said}"
    );
    let az = calls(&dir);
    assert_eq!(az.len(), 8, "7 rules and the VM: {az:?}");
    let ports: Vec<(String, String)> = az[..7]
        .iter()
        .map(|c| {
            assert_eq!(&c[..4], ["az", "network", "nsg", "rule"]);
            assert_eq!(values(c, "--source-address-prefixes"), ["10.20.0.0/16"]);
            assert_eq!(
                values(c, "--destination-address-prefixes"),
                ["10.10.0.0/16"]
            );
            assert_eq!(arg(c, "--direction"), "Inbound");
            (
                arg(c, "--protocol").to_owned(),
                arg(c, "--destination-port-ranges").to_owned(),
            )
        })
        .collect();
    let want = [
        ("Udp", "862"),
        ("Tcp", "862"),
        ("Udp", "863"),
        ("Udp", "863"),
        ("Tcp", "864"),
        ("Udp", "864"),
        ("Udp", "865"),
    ];
    assert_eq!(ports, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let vm = &az[7];
    assert_eq!(&vm[..3], ["az", "vm", "create"]);
    assert_eq!(arg(vm, "--private-ip-address"), "10.10.1.4");
    assert_eq!(arg(vm, "--public-ip-address"), "");
    let data = dir.path().join(arg(vm, "--custom-data"));
    check_cloud_init(&data, &mesh, Some(&keys));

    let mut oci_run = oci_args(mesh_s, "oci-ashburn-db1");
    oci_run.push("--run");
    script(&dir, &bin, "oci-instance", &oci_run);
    let oci = &calls(&dir)[8..];
    assert_eq!(
        oci.len(),
        3,
        "the NSG's rules listed, the missing added, the launch: {oci:?}"
    );
    assert_eq!(&oci[0][..5], ["oci", "network", "nsg", "rules", "list"]);
    assert_eq!(&oci[1][..5], ["oci", "network", "nsg", "rules", "add"]);
    let rules: serde_json::Value = serde_json::from_str(arg(&oci[1], "--security-rules")).unwrap();
    let rules = rules.as_array().unwrap();
    assert_eq!(rules.len(), 7);
    assert!(rules
        .iter()
        .all(|r| r["source"] == "10.10.0.0/16" && r["direction"] == "INGRESS"));
    assert_eq!(rules[1]["protocol"], "6");
    assert_eq!(rules[1]["tcpOptions"]["destinationPortRange"]["min"], 862);
    let launch = &oci[2];
    assert_eq!(&launch[..4], ["oci", "compute", "instance", "launch"]);
    assert_eq!(arg(launch, "--private-ip"), "10.20.1.10");
    assert_eq!(arg(launch, "--assign-public-ip"), "false");
    check_cloud_init(
        &dir.path().join(arg(launch, "--user-data-file")),
        &mesh,
        None,
    );
}

/// The rendered file: valid cloud-config, within OCI's limit (on the base64 form), the mesh
/// byte for byte, the agent's config naming it, the key pair private.
fn check_cloud_init(path: &Path, mesh: &Path, keys: Option<&Path>) {
    let text = std::fs::read_to_string(path).unwrap();
    let encoded = text.len().div_ceil(3) * 4;
    eprintln!(
        "{}: {} bytes, {encoded} in base64",
        path.display(),
        text.len()
    );
    assert!(text.starts_with("#cloud-config\n"));
    assert!(
        encoded <= 32_000,
        "{} bytes, {encoded} in base64: over OCI's 32,000-byte metadata limit",
        text.len()
    );
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let files = v["write_files"].as_sequence().unwrap();
    let file = |p: &str| {
        files
            .iter()
            .find(|f| f["path"] == p)
            .unwrap_or_else(|| panic!("{p} not written: {text}"))
    };
    let mesh_text = std::fs::read_to_string(mesh).unwrap();
    assert_eq!(
        file("/etc/xcbench/mesh.toml")["content"]
            .as_str()
            .unwrap()
            .trim_end(),
        mesh_text.trim_end()
    );
    let agent = file("/etc/xcbench/agent.toml")["content"].as_str().unwrap();
    assert!(
        agent.contains("cloud = \"auto\"") && agent.contains("mesh = \"/etc/xcbench/mesh.toml\"")
    );
    // The config the host gets parses with the mesh beside it (identity reads the config and
    // makes the key pair, nothing more).
    let scratch = path.with_extension("host");
    std::fs::create_dir_all(&scratch).unwrap();
    let local = scratch.join("agent.toml");
    std::fs::write(
        &local,
        agent
            .replace("/etc/xcbench/mesh.toml", mesh.to_str().unwrap())
            .replace("/var/lib/xcbench", scratch.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["identity", "--config"])
        .arg(&local)
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("sha256:"),
        "the rendered agent.toml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(keys) = keys {
        let key = file("/var/lib/xcbench/agent.key");
        assert_eq!(key["permissions"], "0600");
        assert_eq!(
            key["content"].as_str().unwrap().trim_end(),
            std::fs::read_to_string(keys.join("agent.key"))
                .unwrap()
                .trim_end()
        );
    }
    let runcmd = serde_json::to_string(&serde_json::to_value(&v["runcmd"]).unwrap()).unwrap();
    assert!(
        runcmd.contains("xcbench-agent.service") && runcmd.contains("force-confold"),
        "{runcmd}"
    );
    let Some(cloud_init) = tool("cloud-init", "CI") else {
        return;
    };
    let out = Command::new(cloud_init)
        .args(["schema", "--config-file"])
        .arg(path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.contains("Valid cloud-config"),
        "cloud-init schema: {said}"
    );
}

#[test]
fn azure_agents_sharing_an_nsg_make_the_same_rules() {
    let _turn = machine::shared();
    let dir = TempDir::new("deploy-nsg");
    let bin = stand_ins(&dir);
    let mesh = dir.write("mesh.toml", &test_mesh());
    let mesh_s = mesh.to_str().unwrap();
    let mut runs = Vec::new();
    for id in ["az-eastus-app1", "az-eastus-app2"] {
        let before = calls(&dir).len();
        let mut args = azure_args(mesh_s, id);
        args.push("--run");
        script(&dir, &bin, "azure-vm", &args);
        let made = calls(&dir)[before..].to_vec();
        assert_eq!(made.len(), 8, "7 rules and the VM: {made:?}");
        assert_eq!(&made[7][..3], ["az", "vm", "create"]);
        runs.push(made);
    }
    let (first, second) = (&runs[0][..7], &runs[1][..7]);
    let names: BTreeSet<&str> = first.iter().map(|c| arg(c, "--name")).collect();
    let priorities: BTreeSet<u32> = first
        .iter()
        .map(|c| arg(c, "--priority").parse().unwrap())
        .collect();
    assert_eq!(names.len(), 7, "a name per rule: {first:?}");
    assert_eq!(priorities.len(), 7, "a priority per rule: {first:?}");
    assert!(priorities.iter().all(|p| (100..=4096).contains(p)));
    assert!(names.iter().all(|n| n.len() <= 80
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))));
    // The second agent's run re-creates the first's rules, argument for argument (az replaces
    // a rule of the same name): nothing collides, nothing piles up.
    assert_eq!(first, second);
    for c in first {
        assert_eq!(&c[..5], ["az", "network", "nsg", "rule", "create"]);
        assert_eq!(arg(c, "--nsg-name"), "nsg-app");
        assert_eq!(
            values(c, "--source-address-prefixes"),
            ["10.20.0.0/16", "10.21.0.0/16"]
        );
        assert_eq!(
            values(c, "--destination-address-prefixes"),
            ["10.10.0.0/16"]
        );
    }
    // app2 answers on 8862: each rule carries both agents' ports, as separate arguments.
    let ports: Vec<Vec<&str>> = first
        .iter()
        .map(|c| values(c, "--destination-port-ranges"))
        .collect();
    assert_eq!(
        ports,
        [
            ["862", "8862"],
            ["862", "8862"],
            ["863", "8863"],
            ["863", "8863"],
            ["864", "8864"],
            ["864", "8864"],
            ["865", "8865"],
        ]
    );
    assert_eq!(arg(&runs[0][7], "--private-ip-address"), "10.10.1.4");
    assert_eq!(arg(&runs[1][7], "--private-ip-address"), "10.10.1.5");
}

#[test]
fn oci_rules_are_added_once_per_nsg() {
    let _turn = machine::shared();
    let dir = TempDir::new("deploy-oci");
    let bin = stand_ins(&dir);
    let mesh = dir.write("mesh.toml", &test_mesh());
    let mesh_s = mesh.to_str().unwrap();
    let run = |id: &str| {
        let mut args = oci_args(mesh_s, id);
        args.push("--run");
        script(&dir, &bin, "oci-instance", &args)
    };

    // A dry run prints the listing, the rules and the launch, calls nothing, and says that
    // --run adds only the missing rules.
    let printed = script(
        &dir,
        &bin,
        "oci-instance",
        &oci_args(mesh_s, "oci-ashburn-db1"),
    );
    assert!(calls(&dir).is_empty(), "a dry run called {:?}", calls(&dir));
    let at = |prefix: &str| {
        printed
            .lines()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}: {printed}"))
    };
    let (list, add, launch) = (
        at("oci network nsg rules list"),
        at("oci network nsg rules add"),
        at("oci compute instance launch"),
    );
    assert!(list < add && add < launch, "{printed}");
    assert!(
        printed.contains("only the rules below whose description that list lacks are added"),
        "{printed}"
    );

    run("oci-ashburn-db1");
    let first = calls(&dir);
    assert_eq!(first.len(), 3, "list, add, launch: {first:?}");
    assert_eq!(&first[0][..5], ["oci", "network", "nsg", "rules", "list"]);
    assert_eq!(arg(&first[0], "--nsg-id"), "ocid1.nsg.oc1..x");
    assert_eq!(&first[1][..5], ["oci", "network", "nsg", "rules", "add"]);
    let rules: serde_json::Value =
        serde_json::from_str(arg(&first[1], "--security-rules")).unwrap();
    let rules = rules.as_array().unwrap().clone();
    // 7 purposes, each on the default plan's port and db2's 8862 plan's, from one Azure block.
    assert_eq!(rules.len(), 14, "{rules:?}");
    assert!(rules
        .iter()
        .all(|r| r["source"] == "10.10.0.0/16" && r["direction"] == "INGRESS"));
    let described: BTreeSet<&str> = rules
        .iter()
        .map(|r| r["description"].as_str().unwrap())
        .collect();
    assert_eq!(
        described.len(),
        14,
        "descriptions are the rules' keys: {described:?}"
    );
    let ports: BTreeSet<u64> = rules
        .iter()
        .map(|r| {
            let options = match r["protocol"].as_str() {
                Some("6") => &r["tcpOptions"],
                _ => &r["udpOptions"],
            };
            options["destinationPortRange"]["min"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(
        ports,
        BTreeSet::from([862, 863, 864, 865, 8862, 8863, 8864, 8865])
    );

    // The NSG now lists them (as the OCI CLI prints: {"data": [...]}): the next agent adds none.
    let listed = |rules: &[serde_json::Value]| {
        serde_json::to_string_pretty(&serde_json::json!({ "data": rules })).unwrap()
    };
    dir.write("oci.reply", &listed(&rules[..]));
    let said = run("oci-ashburn-db2");
    let all = calls(&dir);
    let second = &all[3..];
    assert_eq!(
        second.len(),
        2,
        "list and launch, no rule added again: {second:?}"
    );
    assert_eq!(&second[0][..5], ["oci", "network", "nsg", "rules", "list"]);
    assert_eq!(&second[1][..4], ["oci", "compute", "instance", "launch"]);
    assert_eq!(arg(&second[1], "--private-ip"), "10.20.1.11");
    assert!(said.contains("14 of the 14 rules already"), "{said}");

    // One rule gone from the NSG: the next agent adds that one only.
    dir.write("oci.reply", &listed(&rules[1..]));
    run("oci-ashburn-db3");
    let all = calls(&dir);
    let third = &all[5..];
    assert_eq!(third.len(), 3, "list, add, launch: {third:?}");
    let added: serde_json::Value =
        serde_json::from_str(arg(&third[1], "--security-rules")).unwrap();
    assert_eq!(added, serde_json::Value::Array(vec![rules[0].clone()]));
}

#[test]
fn cloud_init_size_is_checked_base64_encoded() {
    let _turn = machine::shared();
    let dir = TempDir::new("deploy-size");
    let bin = stand_ins(&dir);
    let sample = std::fs::read_to_string(repo_path("deploy/mesh.sample.toml")).unwrap();
    let padding: String = (0..200)
        .map(|i| {
            format!(
                "# {i:03} {}\n",
                "a long mesh's comments count toward the limit too ".repeat(2)
            )
        })
        .collect();
    let mesh = dir.write("big.toml", &format!("{sample}{padding}"));
    let mesh_s = mesh.to_str().unwrap();
    let render = |id: &str, out: &str| {
        run_script(
            &dir,
            &bin,
            "cloud-init",
            &[
                "--mesh",
                mesh_s,
                "--id",
                id,
                "--package-url",
                URL,
                "-o",
                out,
            ],
        )
    };

    // Azure's 65,536 bytes of custom data take it; both sizes are printed.
    let (ok, said) = render("az-eastus-app1", "az.yaml");
    assert!(ok, "{said}");
    let raw = std::fs::read(dir.path().join("az.yaml")).unwrap().len();
    let encoded = raw.div_ceil(3) * 4;
    assert!(
        said.contains(&format!("{raw} bytes, {encoded} in base64")),
        "{said}"
    );
    // Within 32,000 bytes raw (what the check used to compare), over it base64-encoded.
    assert!(
        raw > 24_000 && raw < 32_000 && encoded > 32_000,
        "{raw} bytes, {encoded} in base64: resize the padding"
    );

    // OCI's 32,000 bytes of metadata do not, and nothing is written.
    let (ok, said) = render("oci-ashburn-db1", "oci.yaml");
    assert!(!ok, "OCI took about {encoded} bytes of base64: {said}");
    assert!(
        said.contains("in base64: over OCI's 32,000-byte instance metadata limit"),
        "{said}"
    );
    assert!(!dir.path().join("oci.yaml").exists());
}

/// One port changed in a mesh moves every reader of the fleet's plan: oci-2 answers on 9100
/// instead of 862, and `xcbench mesh check`, `mesh rules`, the OCI script's NSG rules and
/// `xcbench preflight` (from an agent whose peers come from that mesh) all name 9100 to 9103
/// where they named 862 to 865. `mesh rules` is the reference; the others are held to it.
#[test]
fn a_port_change_in_the_mesh_moves_mesh_check_preflight_and_the_scripts() {
    let _turn = machine::shared();
    let dir = TempDir::new("deploy-ports");
    let stand_in = stand_ins(&dir);
    tls_identity(&dir, "az-1");
    let pin = format!("sha256:{}", "ab".repeat(32));
    let mesh = dir.write(
        "mesh.toml",
        &format!(
            "[mesh]\ncollector = \"http://127.0.0.1:9\"\nallow_loopback = true\n\n[mesh.probe]\nprotocols = [\"udp\", \"tcp\", \"quic\"]\n\n[mesh.schedule]\nevery = \"1h\"\nduration = \"10s\"\nprotocols = [\"tcp\"]\n\n[azure]\naddress_space = [\"127.0.0.1/32\"]\n\n[[azure.agents]]\nid = \"az-1\"\nregion = \"eastus\"\naddress = \"127.0.0.1\"\nfingerprint = \"{pin}\"\n\n[oci]\naddress_space = [\"127.0.0.2/31\"]\n\n[[oci.agents]]\nid = \"oci-1\"\nregion = \"us-ashburn-1\"\naddress = \"127.0.0.2\"\nfingerprint = \"{pin}\"\n\n[[oci.agents]]\nid = \"oci-2\"\nregion = \"us-ashburn-1\"\naddress = \"127.0.0.3:9100\"\nfingerprint = \"{pin}\"\n"
        ),
    );
    let run = |args: &[&str]| {
        let out = Command::new(bin()).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let mesh_s = mesh.to_str().unwrap();

    // The reference: OCI's inbound rules, as (transport, port, purpose in words).
    let (code, lines, err) = run(&["mesh", "rules", mesh_s, "--side", "oci"]);
    assert_eq!(code, Some(0), "{err}");
    let mut planned: BTreeSet<(String, u16, String)> = BTreeSet::new();
    for l in lines.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f.len(), 8, "{l:?}");
        assert_eq!(f[0], "oci");
        if f[1] != "inbound" || f[4] == "collector" {
            continue;
        }
        for port in f[3].split(',') {
            planned.insert((f[2].to_owned(), port.parse().unwrap(), f[7].to_owned()));
        }
    }
    let ports: BTreeSet<u16> = planned.iter().map(|p| p.1).collect();
    assert_eq!(
        ports,
        BTreeSet::from([862, 863, 864, 865, 9100, 9101, 9102, 9103]),
        "{lines}"
    );
    let (_, json, _) = run(&["mesh", "rules", mesh_s, "--side", "oci", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["sides"].as_array().unwrap().len(), 1);
    assert_eq!(json["sides"][0]["rules"][0]["purpose"], "stamp");
    assert_eq!(
        json["sides"][0]["rules"][0]["ports"],
        serde_json::json!([862, 9100])
    );

    // mesh check lists the same rules.
    let (code, check, err) = run(&["mesh", "check", mesh_s]);
    assert_eq!(code, Some(0), "{err}");
    let oci_part = check.split("\n  oci (").nth(1).expect("oci's rules");
    for l in lines.lines().filter(|l| l.contains("\tinbound\t")) {
        let f: Vec<&str> = l.split('\t').collect();
        let want = format!("inbound  {} {:<6} from", f[2], f[3]);
        assert!(
            oci_part
                .lines()
                .any(|c| c.contains(&want) && c.ends_with(f[7])),
            "mesh check lacks {want:?} {}: {check}",
            f[7]
        );
    }

    // The OCI script adds exactly those rules.
    let mut args = oci_args(mesh_s, "oci-2");
    args.push("--run");
    script(&dir, &stand_in, "oci-instance", &args);
    let made = calls(&dir);
    let added: serde_json::Value = serde_json::from_str(arg(&made[1], "--security-rules")).unwrap();
    let added: BTreeSet<(String, u16, String)> = added
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let (transport, options) = match r["protocol"].as_str() {
                Some("6") => ("tcp", &r["tcpOptions"]),
                _ => ("udp", &r["udpOptions"]),
            };
            let port = options["destinationPortRange"]["min"].as_u64().unwrap() as u16;
            let text = r["description"].as_str().unwrap();
            let purpose = text
                .strip_prefix("xcbench ")
                .and_then(|t| t.split(&format!(" {transport}/{port} ")).next())
                .unwrap();
            (transport.to_owned(), port, purpose.to_owned())
        })
        .collect();
    assert_eq!(added, planned);

    // Preflight from az-1 checks oci-2's ports where the plan puts them (each port once,
    // nothing sent but to loopback; the closed ports are refused at once).
    let cfg = dir.write(
        "az-1.toml",
        &(format!("[agent]\nid = \"az-1\"\nmesh = \"{mesh_s}\"\n")
            + &tls_section(&dir, "az-1", &[])),
    );
    let (code, report, err) = run(&[
        "preflight",
        "--config",
        cfg.to_str().unwrap(),
        "--timeout",
        "200ms",
        "--json",
    ]);
    assert_eq!(code, Some(1), "closed ports fail preflight: {report}{err}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let oci2 = report["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "oci-2")
        .expect("oci-2 checked");
    let checked: BTreeSet<(String, u16)> = oci2["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["transport"].as_str().unwrap().to_owned(),
                p["port"].as_u64().unwrap() as u16,
            )
        })
        .collect();
    assert_eq!(
        checked,
        BTreeSet::from([
            ("udp".to_owned(), 9100),
            ("tcp".to_owned(), 9100),
            ("udp".to_owned(), 9101),
            ("tcp".to_owned(), 9102),
        ]),
        "{oci2}"
    );
    let in_plan: BTreeSet<(String, u16)> = planned.iter().map(|p| (p.0.clone(), p.1)).collect();
    assert!(
        checked.is_subset(&in_plan),
        "{checked:?} not in {in_plan:?}"
    );
    let quic = oci2["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == 9101)
        .unwrap();
    assert_eq!(
        quic["purpose"],
        "QUIC probes and throughput tests: control (QUIC)"
    );
}
