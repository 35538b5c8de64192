//! Agents sharing a network security group: on Azure the same rule names and priorities,
//! on OCI each rule added once.

use std::collections::BTreeSet;

use super::{arg, azure_args, calls, oci_args, script, stand_ins, test_mesh, values};
use crate::support::machine;
use crate::support::proc::TempDir;

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
