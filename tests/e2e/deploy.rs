//! The deploy scripts with stand-in `az` and `oci` executables on PATH that record their
//! arguments: a dry run prints and calls nothing; `--run` makes the NSG rules and the
//! instance with the rendered cloud-init, which Debian's `cloud-init schema` validates, stays
//! under OCI's 32,000-byte user_data limit, and carries the mesh byte for byte and the key
//! pair with private permissions.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::machine;
use crate::support::proc::TempDir;
use crate::support::tls::tls_identity;
use crate::support::{repo_path, tool};

/// A directory with `az` and `oci` that append their arguments (one call a line, arguments
/// joined by a unit separator) to `calls.log`.
fn stand_ins(dir: &TempDir) -> PathBuf {
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["az", "oci"] {
        let path = bin.join(name);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\n{{ printf '{name}'; for a in \"$@\"; do printf '\\037%s' \"$a\"; done; printf '\\n'; }} >> '{}'\necho '{{}}'\n",
                dir.path().join("calls.log").display()
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

fn script(dir: &TempDir, bin: &Path, name: &str, args: &[&str]) -> String {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(repo_path(&format!("scripts/deploy/{name}")))
        .args(args)
        .env("PATH", path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} {args:?}: {text}");
    text
}

fn arg<'a>(call: &'a [String], name: &str) -> &'a str {
    let i = call
        .iter()
        .position(|a| a == name)
        .unwrap_or_else(|| panic!("{name} missing: {call:?}"));
    &call[i + 1]
}

#[test]
fn deploy_scripts_launch_both_sides_with_a_valid_cloud_init() {
    let _turn = machine::shared();
    let dir = TempDir::new("deploy");
    let bin = stand_ins(&dir);
    let mesh = repo_path("deploy/mesh.sample.toml");
    let mesh_s = mesh.to_str().unwrap();
    let url = "https://packages.example.invalid/xcbench_0.1.0_amd64.deb";
    let azure = [
        "--mesh",
        mesh_s,
        "--id",
        "az-eastus-app1",
        "--package-url",
        url,
        "--resource-group",
        "rg-app",
        "--vnet",
        "vnet-app",
        "--subnet",
        "snet-app",
        "--nsg",
        "nsg-app",
    ];
    // A dry run prints every command and calls none.
    let printed = script(&dir, &bin, "azure-vm", &azure);
    assert!(calls(&dir).is_empty(), "a dry run called {:?}", calls(&dir));
    assert_eq!(
        printed.matches("az network nsg rule create").count(),
        6,
        "{printed}"
    );
    assert!(printed.contains("az vm create"), "{printed}");

    // Keys made before launch, so the mesh can pin them.
    tls_identity(&dir, "az-eastus-app1");
    let keys = dir.path().join("keys-az-eastus-app1");
    let mut run = azure.to_vec();
    run.extend(["--keys", keys.to_str().unwrap(), "--run"]);
    script(&dir, &bin, "azure-vm", &run);
    let az = calls(&dir);
    assert_eq!(az.len(), 7, "6 rules and the VM: {az:?}");
    let ports: Vec<(String, String)> = az[..6]
        .iter()
        .map(|c| {
            assert_eq!(&c[..4], ["az", "network", "nsg", "rule"]);
            assert_eq!(arg(c, "--source-address-prefixes"), "10.20.0.0/16");
            assert_eq!(arg(c, "--destination-address-prefixes"), "10.10.1.4/32");
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
        ("Tcp", "864"),
        ("Udp", "864"),
        ("Udp", "865"),
    ];
    assert_eq!(ports, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let vm = &az[6];
    assert_eq!(&vm[..3], ["az", "vm", "create"]);
    assert_eq!(arg(vm, "--private-ip-address"), "10.10.1.4");
    assert_eq!(arg(vm, "--public-ip-address"), "");
    let data = dir.path().join(arg(vm, "--custom-data"));
    check_cloud_init(&data, &mesh, Some(&keys));

    let oci_args = [
        "--mesh",
        mesh_s,
        "--id",
        "oci-ashburn-db1",
        "--package-url",
        url,
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
        "--run",
    ];
    script(&dir, &bin, "oci-instance", &oci_args);
    let oci = &calls(&dir)[7..];
    assert_eq!(oci.len(), 2, "{oci:?}");
    assert_eq!(&oci[0][..4], ["oci", "network", "nsg", "rules"]);
    let rules: serde_json::Value = serde_json::from_str(arg(&oci[0], "--security-rules")).unwrap();
    let rules = rules.as_array().unwrap();
    assert_eq!(rules.len(), 6);
    assert!(rules
        .iter()
        .all(|r| r["source"] == "10.10.0.0/16" && r["direction"] == "INGRESS"));
    assert_eq!(rules[1]["protocol"], "6");
    assert_eq!(rules[1]["tcpOptions"]["destinationPortRange"]["min"], 862);
    let launch = &oci[1];
    assert_eq!(&launch[..4], ["oci", "compute", "instance", "launch"]);
    assert_eq!(arg(launch, "--private-ip"), "10.20.1.10");
    assert_eq!(arg(launch, "--assign-public-ip"), "false");
    check_cloud_init(
        &dir.path().join(arg(launch, "--user-data-file")),
        &mesh,
        None,
    );
}

/// The rendered file: valid cloud-config, within OCI's limit, the mesh byte for byte, the
/// agent's config naming it, the key pair private.
fn check_cloud_init(path: &Path, mesh: &Path, keys: Option<&Path>) {
    let text = std::fs::read_to_string(path).unwrap();
    eprintln!("{}: {} bytes", path.display(), text.len());
    assert!(text.starts_with("#cloud-config\n"));
    assert!(
        text.len() < 32_000,
        "{} bytes: over OCI's user_data limit",
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
    let out = Command::new(crate::support::proc::BIN)
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
