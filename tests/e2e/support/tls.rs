//! TLS for agents under test: key pairs made by `xcbench identity` and the fingerprints peers
//! pin, or a CA (rcgen) and the certificates it issues; the `[tls]` sections naming them.

use std::process::Command;

use super::proc::{bin, TempDir};

/// Generates an agent's TLS key pair in `dir` with `xcbench identity`; its fingerprint.
pub(crate) fn tls_identity(dir: &TempDir, id: &str) -> String {
    let keys = dir.path().join(format!("keys-{id}"));
    let cfg = dir.write(
        &format!("identity-{id}.toml"),
        &format!(
            "[agent]\nid = \"{id}\"\ncloud = \"other\"\nregion = \"r\"\n\n[tls]\ndir = \"{}\"\n",
            keys.display()
        ),
    );
    identity_with(bin(), "--config", &cfg)
}

/// What `bin() identity FLAG cfg` printed: a fingerprint, once it succeeded.
pub(crate) fn identity_with(bin: &str, flag: &str, cfg: &std::path::Path) -> String {
    let out = Command::new(bin)
        .args(["identity", flag])
        .arg(cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The `[tls]` section for an agent whose keys `tls_identity` generated.
pub(crate) fn tls_section(dir: &TempDir, id: &str, allow: &[&str]) -> String {
    let allow: Vec<String> = allow.iter().map(|f| format!("\"{f}\"")).collect();
    format!(
        "\n[tls]\ndir = \"{}\"\nallow = [{}]\n",
        dir.path().join(format!("keys-{id}")).display(),
        allow.join(", ")
    )
}

/// A CA in `dir` (`ca.pem`) and, for each of `names`, a certificate it issued naming it,
/// good as server and client (`NAME.crt`, `NAME.key`).
pub(crate) fn ca_issued(dir: &TempDir, names: &[&str]) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca =
        rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    dir.write("ca.pem", &ca.pem());
    for name in names {
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        dir.write(
            &format!("{name}.crt"),
            &params.signed_by(&key, &ca).unwrap().pem(),
        );
        dir.write(&format!("{name}.key"), &key.serialize_pem());
    }
}

/// The `[tls]` section for an agent whose certificate `ca_issued` made.
pub(crate) fn tls_section_ca(dir: &TempDir, name: &str) -> String {
    let p = |f: &str| dir.path().join(f).display().to_string();
    format!(
        "\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n",
        p(&format!("{name}.crt")),
        p(&format!("{name}.key")),
        p("ca.pem")
    )
}

/// `xcbench identity --collector FILE`: the fingerprint of the collector's key pair (made in
/// its `tls.dir` at first use), for agents and the gate to pin.
pub(crate) fn tls_identity_of_collector(cfg: &std::path::Path) -> String {
    identity_with(bin(), "--collector", cfg)
}
