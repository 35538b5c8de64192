//! Instance metadata documents in the services' documented shapes, and what the agent
//! reads from them (labels, information) or refuses (naming the field).

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
