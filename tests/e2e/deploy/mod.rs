//! The deploy scripts with stand-in `az` and `oci` executables on PATH that record their
//! arguments (and answer with `NAME.reply` when a test writes one): a dry run prints and calls
//! nothing; `--run` makes the NSG rules and the instance with the rendered cloud-init, which
//! Debian's `cloud-init schema` validates, stays under OCI's 32,000-byte metadata limit
//! base64-encoded, and carries the mesh byte for byte and the key pair with private
//! permissions. Agents sharing an NSG make the same rules (Azure: same names and priorities;
//! OCI: added once). A port changed in a mesh moves `mesh check`, `mesh rules`, the scripts'
//! rules and preflight alike: the scripts ask the binary (`xcbench mesh rules`, `mesh agent`).
//!
//! # Layout
//! - this file: the stand-in `az` and `oci`, running a script, reading their calls; the test mesh
//!   and both scripts' arguments.
//! - `launch`: a dry run and `--run` on both sides; the rendered cloud-init and its size.
//! - `nsg`: agents sharing an NSG make the same rules (Azure), added once (OCI).
//! - `port_change`: a port changed in the mesh moves mesh check, mesh rules, the scripts and
//!   preflight alike.

mod launch;
mod nsg;
mod port_change;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::proc::TempDir;
use crate::support::repo_path;

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
