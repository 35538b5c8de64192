//! Who may report to the collector, in one place: the policy ([`ClientTrust`]: a snapshot
//! is accepted only from the certificate that belongs to the agent it names, pinned for it
//! or, for an agent nobody pins, issued by `tls.ca` with the agent's id among its names;
//! every other is [`Forbidden`], HTTP 403), the pins it holds ([`pins`]: `tls.agents` and
//! the mesh file's fingerprints), and their state while the collector runs ([`Trust`]:
//! built at bind, refreshed when the mesh file changes).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use xcbench_agent::tls::trust::{names_peer, provider};
use xcbench_agent::tls::{Fingerprint, TlsError};
use xcbench_snapshot::AgentId;

use crate::mesh::ServedMesh;

/// Whom the collector takes snapshots from: agents pinned by fingerprint (the mesh file's
/// and `tls.agents`), and, with a CA, agents whose CA-issued certificate carries their id.
#[derive(Clone)]
pub struct ClientTrust {
    pins: Vec<(AgentId, Fingerprint)>,
    ca: Option<Arc<dyn ClientCertVerifier>>,
}

impl std::fmt::Debug for ClientTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTrust")
            .field("pins", &self.pins)
            .field("ca", &self.ca.is_some())
            .finish()
    }
}

/// Why a client may not report as the agent it names (the collector answers 403).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Forbidden {
    #[error("no client certificate: agents report with their [tls] key pair")]
    NoCertificate,
    #[error("certificate {fingerprint} is pinned for agent {owner}, not for {claimed}")]
    OtherAgent {
        fingerprint: Fingerprint,
        owner: AgentId,
        claimed: AgentId,
    },
    #[error("agent {claimed} is pinned to another certificate than {fingerprint}")]
    NotItsPin {
        fingerprint: Fingerprint,
        claimed: AgentId,
    },
    #[error("certificate {fingerprint} is not pinned for agent {claimed}, and {ca}")]
    Unknown {
        fingerprint: Fingerprint,
        claimed: AgentId,
        /// What the CA said, or that there is none.
        ca: CaVerdict,
    },
}

/// Why the CA did not vouch for an unpinned agent's certificate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CaVerdict {
    #[error("no CA is configured (tls.ca)")]
    NoCa,
    #[error("tls.ca does not vouch for it: {0}")]
    NotIssued(rustls::Error),
    #[error("its CA-issued certificate does not carry the name {0}")]
    OtherName(AgentId),
}

impl ClientTrust {
    pub fn new(
        pins: impl IntoIterator<Item = (AgentId, Fingerprint)>,
        ca: Option<Arc<RootCertStore>>,
    ) -> Result<ClientTrust, TlsError> {
        let ca = ca
            .map(|roots| {
                WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(TlsError::Ca)
            })
            .transpose()?;
        Ok(ClientTrust {
            pins: pins.into_iter().collect(),
            ca,
        })
    }

    /// The same CA with other pins (the mesh file changed).
    pub fn with_pins(&self, pins: impl IntoIterator<Item = (AgentId, Fingerprint)>) -> Self {
        ClientTrust {
            pins: pins.into_iter().collect(),
            ca: self.ca.clone(),
        }
    }

    /// Whether the client that presented `chain` (end entity first; empty for none) may
    /// report as `claimed`, at `now`. A pin decides alone, either way: an agent pinned to
    /// one key is not taken on another key by name, and a pinned key reports only as its
    /// own agent. Without a pin the CA must vouch for the chain and the certificate must
    /// carry `claimed` among its names.
    pub fn authorize(
        &self,
        chain: &[CertificateDer<'static>],
        claimed: &AgentId,
        now: UnixTime,
    ) -> Result<(), Forbidden> {
        let Some((end, intermediates)) = chain.split_first() else {
            return Err(Forbidden::NoCertificate);
        };
        let fingerprint = Fingerprint::of(end);
        if let Some((owner, _)) = self.pins.iter().find(|(_, f)| *f == fingerprint) {
            return if owner == claimed {
                Ok(())
            } else {
                Err(Forbidden::OtherAgent {
                    fingerprint,
                    owner: owner.clone(),
                    claimed: claimed.clone(),
                })
            };
        }
        if self.pins.iter().any(|(id, _)| id == claimed) {
            return Err(Forbidden::NotItsPin {
                fingerprint,
                claimed: claimed.clone(),
            });
        }
        let unknown = |ca: CaVerdict| Forbidden::Unknown {
            fingerprint,
            claimed: claimed.clone(),
            ca,
        };
        let Some(ca) = &self.ca else {
            return Err(unknown(CaVerdict::NoCa));
        };
        ca.verify_client_cert(end, intermediates, now)
            .map_err(|e| unknown(CaVerdict::NotIssued(e)))?;
        if names_peer(end, claimed.as_str()) {
            Ok(())
        } else {
            Err(unknown(CaVerdict::OtherName(claimed.clone())))
        }
    }
}

/// Whom the collector takes snapshots from while it runs: `tls.agents` and the CA, with the
/// mesh file's pins added as the file changes.
pub(crate) struct Trust {
    pub(crate) current: ClientTrust,
    /// `tls.agents`, which a mesh pin for the same agent does not replace.
    own: Vec<(AgentId, Fingerprint)>,
}

impl Trust {
    /// `tls.agents` (`own`) and the CA, with the pins of the mesh served at start.
    pub(crate) fn new(
        own: Vec<(AgentId, Fingerprint)>,
        ca: Option<Arc<RootCertStore>>,
        mesh: Option<&ServedMesh>,
    ) -> Result<Trust, TlsError> {
        let current = ClientTrust::new(pins(&own, mesh), ca)?;
        Ok(Trust { current, own })
    }

    /// The mesh file changed: its pins replace the last file's (`tls.agents` stay).
    pub(crate) fn refresh(&mut self, mesh: &ServedMesh) {
        self.current = self.current.with_pins(pins(&self.own, Some(mesh)));
    }
}

/// `tls.agents` and the mesh's pins, `tls.agents` first (it wins for an agent both pin).
pub(crate) fn pins(
    own: &[(AgentId, Fingerprint)],
    mesh: Option<&ServedMesh>,
) -> Vec<(AgentId, Fingerprint)> {
    let mut all = own.to_vec();
    for (id, fp) in mesh.map(|m| m.pins.as_slice()).unwrap_or_default() {
        if !all.iter().any(|(known, _)| known == id) {
            all.push((id.clone(), *fp));
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate carrying `names`.
    fn cert(names: &[&str]) -> CertificateDer<'static> {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn the_collector_takes_an_agent_only_on_its_own_certificate() {
        let id = |s: &str| s.parse::<AgentId>().unwrap();
        let now = UnixTime::now();
        let (az, oci, stranger) = (cert(&["az-1"]), cert(&["oci-1"]), cert(&["az-9"]));
        let trust = ClientTrust::new(
            [
                (id("az-1"), Fingerprint::of(&az)),
                (id("oci-1"), Fingerprint::of(&oci)),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            trust.authorize(std::slice::from_ref(&az), &id("az-1"), now),
            Ok(())
        );
        assert_eq!(
            trust.authorize(&[], &id("az-1"), now),
            Err(Forbidden::NoCertificate)
        );
        // oci-1's key posting as az-1.
        assert_eq!(
            trust.authorize(std::slice::from_ref(&oci), &id("az-1"), now),
            Err(Forbidden::OtherAgent {
                fingerprint: Fingerprint::of(&oci),
                owner: id("oci-1"),
                claimed: id("az-1"),
            })
        );
        // A stranger naming a pinned agent, and naming itself.
        assert!(matches!(
            trust.authorize(&[cert(&["az-1"])], &id("az-1"), now),
            Err(Forbidden::NotItsPin { .. })
        ));
        let e = trust
            .authorize(std::slice::from_ref(&stranger), &id("az-9"), now)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "certificate {} is not pinned for agent az-9, and no CA is configured (tls.ca)",
                Fingerprint::of(&stranger)
            )
        );
        // New pins replace the old ones (the mesh file changed).
        let moved = trust.with_pins([(id("az-9"), Fingerprint::of(&stranger))]);
        assert_eq!(moved.authorize(&[stranger], &id("az-9"), now), Ok(()));
        assert!(moved.authorize(&[az], &id("az-1"), now).is_err());
    }

    #[test]
    fn a_ca_vouches_for_the_names_it_issued() {
        let id = |s: &str| s.parse::<AgentId>().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let issued = |name: &str| {
            let mut p = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            p.signed_by(&rcgen::KeyPair::generate().unwrap(), &ca)
                .unwrap()
                .der()
                .clone()
        };
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let pinned = cert(&["oci-1"]);
        let trust = ClientTrust::new(
            [(id("oci-1"), Fingerprint::of(&pinned))],
            Some(Arc::new(roots)),
        )
        .unwrap();
        let now = UnixTime::now();
        assert_eq!(trust.authorize(&[issued("az-1")], &id("az-1"), now), Ok(()));
        // Issued to another name; or to a pinned agent's name on another key.
        let e = trust
            .authorize(&[issued("az-2")], &id("az-1"), now)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("its CA-issued certificate does not carry the name az-1"),
            "{e}"
        );
        assert!(matches!(
            trust.authorize(&[issued("oci-1")], &id("oci-1"), now),
            Err(Forbidden::NotItsPin { .. })
        ));
        // Self-signed, not issued by the CA.
        let e = trust
            .authorize(&[cert(&["az-1"])], &id("az-1"), now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls.ca does not vouch for it"), "{e}");
    }
}
