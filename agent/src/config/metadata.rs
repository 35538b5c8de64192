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
mod tests {
    use super::*;

    /// An Azure IMDS instance document in the documented shape (2021-02-01), trimmed to a
    /// few of its fields.
    const AZURE: &str = r#"{
      "compute": {
        "azEnvironment": "AzurePublicCloud",
        "location": "eastus",
        "name": "app1",
        "vmId": "3c7a6b2e-0000-4000-8000-000000000001",
        "vmSize": "Standard_D4s_v5",
        "zone": "2",
        "platformFaultDomain": "0",
        "tags": ""
      },
      "network": {
        "interface": [{
          "ipv4": {
            "ipAddress": [{ "privateIpAddress": "10.10.0.4", "publicIpAddress": "" }],
            "subnet": [{ "address": "10.10.0.0", "prefix": "24" }]
          },
          "ipv6": { "ipAddress": [] },
          "macAddress": "000D3A000001"
        }]
      }
    }"#;

    /// An OCI IMDSv2 instance document in the documented shape, trimmed.
    const OCI: &str = r#"{
      "availabilityDomain": "Uocm:US-ASHBURN-AD-1",
      "faultDomain": "FAULT-DOMAIN-2",
      "compartmentId": "ocid1.compartment.oc1..example",
      "displayName": "db1",
      "hostname": "db1",
      "id": "ocid1.instance.oc1.iad.example",
      "region": "iad",
      "canonicalRegionName": "us-ashburn-1",
      "ociAdName": "us-ashburn-ad-1",
      "regionInfo": { "realmKey": "oc1", "regionKey": "IAD", "regionIdentifier": "us-ashburn-1" },
      "shape": "VM.Standard.E4.Flex",
      "shapeConfig": { "ocpus": 2.0, "memoryInGBs": 32.0 },
      "state": "Running"
    }"#;

    /// An OCI IMDSv2 VNICs document: one VNIC.
    const VNICS: &str = r#"[{
      "vnicId": "ocid1.vnic.oc1.iad.example",
      "privateIp": "10.20.0.5",
      "vlanTag": 0,
      "macAddr": "02:00:17:00:00:01",
      "virtualRouterIp": "10.20.0.1",
      "subnetCidrBlock": "10.20.0.0/24"
    }]"#;

    fn replaced(doc: &str, from: &str, to: &str) -> Vec<u8> {
        assert!(doc.contains(from), "{from}");
        doc.replace(from, to).into_bytes()
    }

    #[test]
    fn azure_document_gives_labels_and_info() {
        let m = parse_azure(AZURE.as_bytes()).unwrap();
        assert_eq!(
            m,
            InstanceMetadata {
                cloud: Cloud::Azure,
                region: "eastus".into(),
                zone: "2".into(),
                instance: InstanceInfo {
                    name: Some("app1".into()),
                    size: Some("Standard_D4s_v5".into()),
                    fault_domain: Some("0".into()),
                    private_ip: Some("10.10.0.4".parse().unwrap()),
                },
            }
        );
        // A VM outside availability zones says "".
        let m = parse_azure(&replaced(AZURE, r#""zone": "2""#, r#""zone": """#)).unwrap();
        assert_eq!(m.zone, "");
        // Information is optional; the labels' sources are not.
        let bare = br#"{"compute": {"location": "westeurope"}}"#;
        let m = parse_azure(bare).unwrap();
        assert_eq!((m.region.as_str(), m.zone.as_str()), ("westeurope", ""));
        assert_eq!(m.instance, InstanceInfo::default());
    }

    #[test]
    fn azure_errors_name_the_field() {
        let err = |body: &[u8]| parse_azure(body).unwrap_err().to_string();
        assert!(
            err(b"<html>").starts_with("not JSON: "),
            "{}",
            err(b"<html>")
        );
        assert_eq!(err(b"[]"), "(document): must be an object, not an array");
        assert_eq!(
            err(&replaced(AZURE, r#""location": "eastus","#, "")),
            "compute.location: missing"
        );
        assert_eq!(
            err(&replaced(
                AZURE,
                r#""location": "eastus""#,
                r#""location": 7"#
            )),
            "compute.location: must be a string, not a number"
        );
        assert_eq!(
            err(&replaced(
                AZURE,
                r#""location": "eastus""#,
                r#""location": """#
            )),
            "compute.location = \"\": must not be empty"
        );
        assert_eq!(
            err(&replaced(AZURE, r#""location": "eastus""#, r#""location": "east us""#)),
            "compute.location = \"east us\": must be at most 64 printable ASCII characters without quotes or backslashes"
        );
        assert_eq!(
            err(&replaced(AZURE, r#""10.10.0.4""#, r#""ten""#)),
            "network.interface[0].ipv4.ipAddress[0].privateIpAddress = \"ten\": must be an IP address"
        );
        assert_eq!(
            err(br#"{"compute": {"location": "eastus"}, "network": {"interface": {}}}"#),
            "network.interface: must be an array, not an object"
        );
    }

    #[test]
    fn oci_documents_give_labels_and_info() {
        let mut m = parse_oci_instance(OCI.as_bytes()).unwrap();
        m.instance.private_ip = parse_oci_vnics(VNICS.as_bytes()).unwrap();
        assert_eq!(
            m,
            InstanceMetadata {
                cloud: Cloud::Oci,
                region: "us-ashburn-1".into(),
                zone: "US-ASHBURN-AD-1".into(),
                instance: InstanceInfo {
                    name: Some("db1".into()),
                    size: Some("VM.Standard.E4.Flex".into()),
                    fault_domain: Some("FAULT-DOMAIN-2".into()),
                    private_ip: Some("10.20.0.5".parse().unwrap()),
                },
            }
        );
        // Without a tenancy prefix the domain is taken as it is.
        let plain = replaced(OCI, "Uocm:US-ASHBURN-AD-1", "AD-1");
        assert_eq!(parse_oci_instance(&plain).unwrap().zone, "AD-1");
        assert_eq!(parse_oci_vnics(b"[]").unwrap(), None);
    }

    #[test]
    fn oci_errors_name_the_field() {
        let err = |body: &[u8]| parse_oci_instance(body).unwrap_err().to_string();
        assert_eq!(
            err(&replaced(
                OCI,
                r#""canonicalRegionName": "us-ashburn-1","#,
                ""
            )),
            "canonicalRegionName: missing"
        );
        assert_eq!(
            err(&replaced(
                OCI,
                r#""availabilityDomain": "Uocm:US-ASHBURN-AD-1","#,
                ""
            )),
            "availabilityDomain: missing"
        );
        assert_eq!(
            err(&replaced(OCI, "Uocm:US-ASHBURN-AD-1", "Uocm:")),
            "availabilityDomain = \"\": must not be empty"
        );
        assert_eq!(
            err(&replaced(
                OCI,
                r#""shape": "VM.Standard.E4.Flex""#,
                r#""shape": {}"#
            )),
            "shape: must be a string, not an object"
        );
        assert!(err(b"{").starts_with("not JSON: "));
        let vnics = |body: &[u8]| parse_oci_vnics(body).unwrap_err().to_string();
        assert_eq!(vnics(b"{}"), "(document): must be an array, not an object");
        assert_eq!(
            vnics(&replaced(VNICS, "\"10.20.0.5\"", "5")),
            "[0].privateIp: must be a string, not a number"
        );
    }

    #[test]
    fn the_file_wins_over_metadata() {
        let text = "[agent]\nid = \"a\"\ncloud = \"auto\"\n";
        let config = AgentConfig::parse("agent.toml", text).unwrap();
        let found = parse_oci_instance(OCI.as_bytes()).unwrap();
        let resolved = config.clone().with_metadata(&found);
        assert_eq!(resolved.auto, None);
        assert_eq!(resolved.identity.cloud, Cloud::Oci);
        assert_eq!(resolved.identity.region, "us-ashburn-1");
        assert_eq!(resolved.identity.zone, "US-ASHBURN-AD-1");

        let text = format!("{text}region = \"ashburn\"\nzone = \"\"\n");
        let resolved = AgentConfig::parse("agent.toml", &text)
            .unwrap()
            .with_metadata(&found);
        assert_eq!(resolved.identity.cloud, Cloud::Oci);
        assert_eq!(resolved.identity.region, "ashburn");
        assert_eq!(
            resolved.identity.zone, "",
            "an empty zone set by hand wins too"
        );

        // Without auto, metadata changes nothing.
        let fixed = "[agent]\nid = \"a\"\ncloud = \"azure\"\nregion = \"eastus\"\n";
        let c = AgentConfig::parse("agent.toml", fixed).unwrap();
        assert_eq!(c.clone().with_metadata(&found), c);
    }

    #[test]
    fn metadata_urls_parse() {
        let url = |t: &str| MetadataUrl::parse(t).map(|u| (u.host, u.port));
        assert_eq!(MetadataUrl::default().to_string(), "http://169.254.169.254");
        assert_eq!(
            url("http://127.0.0.1:8080/"),
            Ok(("127.0.0.1".into(), 8080))
        );
        assert_eq!(url("http://imds.local"), Ok(("imds.local".into(), 80)));
        assert_eq!(url("http://[::1]:81"), Ok(("::1".into(), 81)));
        assert_eq!(
            MetadataUrl::parse("http://[::1]:81").unwrap().to_string(),
            "http://[::1]:81"
        );
        for bad in [
            "https://169.254.169.254",
            "169.254.169.254",
            "http://",
            "http://h:0",
            "http://h:x",
            "http://h/metadata",
            "http://u@h",
            "http://[zz]:1",
        ] {
            assert!(MetadataUrl::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Endpoint::AzureInstance.describe(&MetadataUrl::default()),
            "Azure IMDS http://169.254.169.254/metadata/instance"
        );
    }
}
