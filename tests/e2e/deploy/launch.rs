//! Both deploy scripts launching an agent: a dry run calls nothing, `--run` makes the NSG
//! rules and the instance with a cloud-init that Debian's `cloud-init schema` validates, which
//! carries the mesh byte for byte and the key pair private, and whose size is checked
//! base64-encoded against OCI's limit.

use std::path::Path;
use std::process::Command;

use super::{arg, azure_args, calls, oci_args, run_script, script, stand_ins, values, URL};
use crate::support::proc::{bin, TempDir};
use crate::support::tls::tls_identity;
use crate::support::{machine, repo_path, tool};

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
