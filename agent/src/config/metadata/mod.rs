//! `cloud = "auto"`: the instance metadata documents of Azure (IMDS) and OCI (IMDSv2) read
//! into the agent's labels, and those labels merged with the values the file sets (the
//! file's win). Pure: [`crate::net::metadata`] fetches the bytes and hands them here.
//!
//! Labels: the cloud; the region (Azure `compute.location`, OCI `canonicalRegionName`); the
//! zone (Azure `compute.zone`, `""` without one; OCI's availability domain without its
//! tenancy prefix, `Uocm:US-ASHBURN-AD-1` -> `US-ASHBURN-AD-1`). The fault domain is not
//! part of the zone: Azure's is not either, and a zone should mean the same on both clouds.
//! The instance name, VM size or shape, fault domain and private address are
//! [`InstanceInfo`]: logged at start, never labels.

use std::fmt;
use std::net::IpAddr;

use serde_json::Value;
use xcbench_snapshot::{label::check_label_value, Cloud, Expected};

use super::{defaults, AgentConfig};

/// Where instance metadata is read: `http://host[:port]`, the link-local service both clouds
/// answer on by default; another address serves tests or a local forwarder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataUrl {
    host: String,
    port: u16,
}

impl MetadataUrl {
    const EXPECTED: &'static str = "must be an http:// URL of a host and an optional port, e.g. \"http://169.254.169.254\" or \"http://127.0.0.1:8080\"";

    /// `http://host`, `http://host:port`, `http://[v6]:port`; a trailing `/` is allowed, a
    /// path is not (each endpoint has its own).
    pub fn parse(text: &str) -> Result<MetadataUrl, Expected> {
        let bad = || Expected(Self::EXPECTED.to_owned());
        let authority = text
            .strip_prefix("http://")
            .ok_or_else(bad)?
            .trim_end_matches('/');
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, rest) = v6.split_once(']').ok_or_else(bad)?;
                host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
                (host, rest.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let port = match port {
            None => 80,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?,
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
        if !host_ok {
            return Err(bad());
        }
        Ok(MetadataUrl {
            host: host.to_owned(),
            port,
        })
    }

    /// The host name or address, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host[:port]` as the `Host` header wants it.
    pub fn authority(&self) -> String {
        let host = match self.host.contains(':') {
            true => format!("[{}]", self.host),
            false => self.host.clone(),
        };
        match self.port {
            80 => host,
            p => format!("{host}:{p}"),
        }
    }
}

impl Default for MetadataUrl {
    fn default() -> MetadataUrl {
        MetadataUrl::parse(defaults::METADATA_URL).expect("the default metadata URL parses")
    }
}

impl fmt::Display for MetadataUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.authority())
    }
}

/// The documents read for `cloud = "auto"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Azure IMDS, the instance document (compute and network).
    AzureInstance,
    /// OCI IMDSv2, the instance document.
    OciInstance,
    /// OCI IMDSv2, the VNICs (the private address).
    OciVnics,
}

impl Endpoint {
    /// The request path, with its query.
    pub fn path_and_query(self) -> &'static str {
        match self {
            Endpoint::AzureInstance => "/metadata/instance?api-version=2021-02-01",
            Endpoint::OciInstance => "/opc/v2/instance/",
            Endpoint::OciVnics => "/opc/v2/vnics/",
        }
    }

    /// The header each service requires, so that a request cannot come from a redirected
    /// or forwarded browser request by accident.
    pub fn header(self) -> (&'static str, &'static str) {
        match self {
            Endpoint::AzureInstance => ("Metadata", "true"),
            Endpoint::OciInstance | Endpoint::OciVnics => ("Authorization", "Bearer Oracle"),
        }
    }

    /// The service's name in messages.
    pub fn service(self) -> &'static str {
        match self {
            Endpoint::AzureInstance => "Azure IMDS",
            Endpoint::OciInstance | Endpoint::OciVnics => "OCI IMDSv2",
        }
    }

    /// `service url` for messages (the path without its query).
    pub fn describe(self, base: &MetadataUrl) -> String {
        let path = self.path_and_query();
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        format!("{} {base}{path}", self.service())
    }
}

/// What a document said about this host: its labels and the rest worth logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceMetadata {
    pub cloud: Cloud,
    pub region: String,
    pub zone: String,
    pub instance: InstanceInfo,
}

/// What the metadata says beyond labels: logged at start, not exported (its values are
/// unbounded, and no series needs them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceInfo {
    /// Azure `compute.name`, OCI `displayName`.
    pub name: Option<String>,
    /// Azure `compute.vmSize`, OCI `shape`.
    pub size: Option<String>,
    /// Azure `compute.platformFaultDomain`, OCI `faultDomain`.
    pub fault_domain: Option<String>,
    /// The primary interface's first private address (OCI: the first VNIC's).
    pub private_ip: Option<IpAddr>,
}

impl fmt::Display for InstanceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |v: &Option<String>| v.as_deref().map_or("-".to_owned(), |s| format!("{s:?}"));
        let ip = self.private_ip.map_or("-".to_owned(), |ip| ip.to_string());
        write!(
            f,
            "name {}, size {}, fault domain {}, private address {ip}",
            text(&self.name),
            text(&self.size),
            text(&self.fault_domain)
        )
    }
}

/// `cloud = "auto"` in the file: where metadata is read and the values the file sets, which
/// win over what metadata says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoLabels {
    pub url: MetadataUrl,
    pub region: Option<String>,
    pub zone: Option<String>,
}

/// Why a document that was served could not be read; `path` names the field, e.g.
/// `compute.location` or `[0].privateIp`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("{path}: missing")]
    Missing { path: String },
    #[error("{path}: must be {expected}, not {found}")]
    Type {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{path} = {value:?}: {expected}")]
    Value {
        path: String,
        value: String,
        expected: &'static str,
    },
}

/// The Azure IMDS instance document (`/metadata/instance`, api-version 2021-02-01).
pub fn parse_azure(body: &[u8]) -> Result<InstanceMetadata, DocumentError> {
    use Key::{At, F};
    let doc = json(body)?;
    let region = label(&doc, &[F("compute"), F("location")], true)?;
    let zone = match text(&doc, &[F("compute"), F("zone")])? {
        None => String::new(),
        Some(_) => label(&doc, &[F("compute"), F("zone")], false)?,
    };
    let address = [
        F("network"),
        F("interface"),
        At(0),
        F("ipv4"),
        F("ipAddress"),
        At(0),
        F("privateIpAddress"),
    ];
    Ok(InstanceMetadata {
        cloud: Cloud::Azure,
        region,
        zone,
        instance: InstanceInfo {
            name: info(&doc, &[F("compute"), F("name")])?,
            size: info(&doc, &[F("compute"), F("vmSize")])?,
            fault_domain: info(&doc, &[F("compute"), F("platformFaultDomain")])?,
            private_ip: address_at(&doc, &address)?,
        },
    })
}

/// The OCI IMDSv2 instance document (`/opc/v2/instance/`); the private address comes from
/// the VNICs ([`parse_oci_vnics`]).
pub fn parse_oci_instance(body: &[u8]) -> Result<InstanceMetadata, DocumentError> {
    use Key::F;
    let doc = json(body)?;
    // `region` is a short code (`iad`) for the older regions; the canonical name is not.
    let region = label(&doc, &[F("canonicalRegionName")], true)?;
    let ad_path = [F("availabilityDomain")];
    let ad = required(&doc, &ad_path)?;
    // `Uocm:US-ASHBURN-AD-1`: the prefix differs per tenancy, the rest names the domain.
    let zone = ad.split_once(':').map_or(ad, |(_, name)| name);
    check(&ad_path, zone, true)?;
    Ok(InstanceMetadata {
        cloud: Cloud::Oci,
        region,
        zone: zone.to_owned(),
        instance: InstanceInfo {
            name: info(&doc, &[F("displayName")])?,
            size: info(&doc, &[F("shape")])?,
            fault_domain: info(&doc, &[F("faultDomain")])?,
            private_ip: None,
        },
    })
}

/// The OCI IMDSv2 VNICs document (`/opc/v2/vnics/`): the first VNIC's private address, if
/// any.
pub fn parse_oci_vnics(body: &[u8]) -> Result<Option<IpAddr>, DocumentError> {
    use Key::{At, F};
    let doc = json(body)?;
    if !doc.is_array() {
        return Err(DocumentError::Type {
            path: "(document)".into(),
            expected: "an array",
            found: kind(&doc),
        });
    }
    address_at(&doc, &[At(0), F("privateIp")])
}

impl AgentConfig {
    /// This configuration with `cloud = "auto"` resolved by `found`: the cloud from
    /// metadata, region and zone from the file where it sets them, else from metadata.
    /// Without `auto`, the configuration as it is.
    pub fn with_metadata(mut self, found: &InstanceMetadata) -> AgentConfig {
        if let Some(auto) = self.auto.take() {
            self.identity.cloud = found.cloud;
            self.identity.region = auto.region.unwrap_or_else(|| found.region.clone());
            self.identity.zone = auto.zone.unwrap_or_else(|| found.zone.clone());
        }
        self
    }
}

/// One step into a document: an object's field or an array's element.
#[derive(Clone, Copy)]
enum Key {
    F(&'static str),
    At(usize),
}

fn path_text(path: &[Key]) -> String {
    let mut s = String::new();
    for k in path {
        match k {
            Key::F(name) if s.is_empty() => s.push_str(name),
            Key::F(name) => {
                s.push('.');
                s.push_str(name);
            }
            Key::At(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn json(body: &[u8]) -> Result<Value, DocumentError> {
    serde_json::from_slice(body).map_err(|e| DocumentError::Json(e.to_string()))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value at `path`, `None` where a field or element is absent (or null); an error where
/// a step meets the wrong kind of value.
fn lookup<'a>(doc: &'a Value, path: &[Key]) -> Result<Option<&'a Value>, DocumentError> {
    let mut v = doc;
    for (i, key) in path.iter().enumerate() {
        let (next, expected) = match key {
            Key::F(name) => (v.as_object().map(|o| o.get(*name)), "an object"),
            Key::At(n) => (v.as_array().map(|a| a.get(*n)), "an array"),
        };
        match next {
            None => {
                return Err(DocumentError::Type {
                    path: match i {
                        0 => "(document)".into(),
                        _ => path_text(&path[..i]),
                    },
                    expected,
                    found: kind(v),
                })
            }
            Some(None) | Some(Some(Value::Null)) => return Ok(None),
            Some(Some(found)) => v = found,
        }
    }
    Ok(Some(v))
}

/// The string at `path`, if there is one.
fn text<'a>(doc: &'a Value, path: &[Key]) -> Result<Option<&'a str>, DocumentError> {
    match lookup(doc, path)? {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(DocumentError::Type {
            path: path_text(path),
            expected: "a string",
            found: kind(other),
        }),
    }
}

fn required<'a>(doc: &'a Value, path: &[Key]) -> Result<&'a str, DocumentError> {
    text(doc, path)?.ok_or_else(|| DocumentError::Missing {
        path: path_text(path),
    })
}

/// A label value at `path`: valid as the config's own values are; empty only where allowed.
fn label(doc: &Value, path: &[Key], non_empty: bool) -> Result<String, DocumentError> {
    let value = required(doc, path)?;
    check(path, value, non_empty)?;
    Ok(value.to_owned())
}

fn check(path: &[Key], value: &str, non_empty: bool) -> Result<(), DocumentError> {
    let problem = match (value.is_empty() && non_empty, check_label_value(value)) {
        (true, _) => "must not be empty",
        (false, Err(e)) => e,
        (false, Ok(())) => return Ok(()),
    };
    Err(DocumentError::Value {
        path: path_text(path),
        value: value.to_owned(),
        expected: problem,
    })
}

/// Information only: absent or empty is `None`.
fn info(doc: &Value, path: &[Key]) -> Result<Option<String>, DocumentError> {
    Ok(text(doc, path)?
        .filter(|s| !s.is_empty())
        .map(str::to_owned))
}

fn address_at(doc: &Value, path: &[Key]) -> Result<Option<IpAddr>, DocumentError> {
    info(doc, path)?
        .map(|s| {
            s.parse().map_err(|_| DocumentError::Value {
                path: path_text(path),
                value: s,
                expected: "must be an IP address",
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests;
