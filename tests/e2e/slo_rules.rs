//! `xcbench slo rules` with the real binary: the sample SLO file's rules pass
//! `promtool check rules`; the rules committed in `dashboards/` are exactly the generator's
//! output for `dashboards/slo.test.yaml` and pass `promtool test rules` (fast burns page
//! after the right window, burns within budget and no data fire nothing); names that need
//! escaping stay valid; bad input exits 2 naming the file or the flag.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::machine;
use crate::support::proc::{bin, TempDir};
use crate::support::{repo_path, tool};

fn slo_rules(args: &[&str]) -> Output {
    Command::new(bin())
        .args(["slo", "rules"])
        .args(args)
        .current_dir(repo_path(""))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs promtool in `dir`; its output when it succeeds.
fn promtool(promtool: &Path, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(out.status.success(), "promtool {args:?}: {said}");
    said
}

#[test]
fn sample_slo_rules_pass_promtool_check() {
    let _turn = machine::shared();
    let dir = TempDir::new("slo-rules");
    let file = dir.path().join("rules.yml");
    let out = slo_rules(&["slo/slo.sample.yaml", "-o", file.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(out.stdout.is_empty(), "-o leaves stdout empty");
    for line in [
        "xcbench slo rules: left out rtt-under-load (rtt_increase_under_load): judged per scheduled throughput test",
        "xcbench slo rules: left out goodput (goodput): judged per scheduled throughput test",
        "xcbench slo rules: left out rtt-after-migration (rtt): judged against a baseline window",
        "xcbench slo rules: rules for 12 of 15 objectives written to ",
    ] {
        assert!(err.contains(line), "{err}");
    }
    let written = std::fs::read_to_string(&file).unwrap();
    // Without -o the same text goes to stdout.
    let stdout = slo_rules(&["slo/slo.sample.yaml"]);
    assert_eq!(stdout.status.code(), Some(0));
    assert_eq!(text(&stdout.stdout), written);
    // The golden file (tests/golden/slo_rules.yml) pins this text; the binary agrees.
    assert_eq!(
        written,
        std::fs::read_to_string(repo_path("tests/golden/slo_rules.yml")).unwrap()
    );
    let Some(promtool_bin) = tool("promtool", "CI") else {
        return;
    };
    let said = promtool(&promtool_bin, dir.path(), &["check", "rules", "rules.yml"]);
    // 12 objectives: a budget, 7 error ratios and the period's each, a threshold for the 7
    // latency ones, a ticket each and a page for the 7 key ones.
    assert!(said.contains("SUCCESS: 134 rules found"), "{said}");
}

#[test]
fn committed_slo_rules_are_generated_and_pass_promtool_test() {
    let _turn = machine::shared();
    let out = slo_rules(&["dashboards/slo.test.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let committed = std::fs::read_to_string(repo_path("dashboards/xcbench.slo.rules.yml")).unwrap();
    assert!(
        text(&out.stdout) == committed,
        "dashboards/xcbench.slo.rules.yml is not `xcbench slo rules dashboards/slo.test.yaml`: regenerate it (XCBENCH_UPDATE_GOLDEN=1 cargo test -p xcbench slo::)"
    );
    let Some(promtool_bin) = tool("promtool", "CI") else {
        return;
    };
    let dir = repo_path("dashboards");
    promtool(
        &promtool_bin,
        &dir,
        &["check", "rules", "xcbench.slo.rules.yml"],
    );
    let said = promtool(
        &promtool_bin,
        &dir,
        &["test", "rules", "xcbench.slo.rules.test.yml"],
    );
    assert!(said.contains("SUCCESS"), "{said}");
}

#[test]
fn names_that_need_escaping_make_valid_rules() {
    let _turn = machine::shared();
    let dir = TempDir::new("slo-rules-odd");
    let slo = dir.write(
        "slo.yaml",
        r#"version: 1
defaults:
  select: { src_region: 'east "1" \ {{ .x }}' }
objectives:
  - name: 'p99 "fast" \ {{ .Labels }}: #1 ü 延迟'
    description: "{{ template }} and # not a comment"
    indicator: rtt
    quantile: p99.9
    at_most: 1.5ms
  - name: 'P99 fast {{ .Labels }} 1 ü'
    indicator: loss
    direction: reverse
    at_most: 0.01%
    key: false
  - name: max
    indicator: ipdv
    direction: forward
    quantile: max
    at_most: 250us
"#,
    );
    let file = dir.path().join("rules.yml");
    let out = slo_rules(&[
        slo.to_str().unwrap(),
        "--period",
        "7d",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rules = std::fs::read_to_string(&file).unwrap();
    assert!(rules.contains("[70s]"), "7d scales 5m to 70s");
    assert!(rules.contains("alert: xcbench_slo_p99_fast_labels_1_page"));
    assert!(rules.contains("alert: xcbench_slo_p99_fast_labels_1_2_ticket"));
    let Some(promtool_bin) = tool("promtool", "CI") else {
        return;
    };
    // promtool parses every expression and every annotation template.
    let said = promtool(&promtool_bin, dir.path(), &["check", "rules", "rules.yml"]);
    assert!(said.contains("SUCCESS"), "{said}");
    // The OpenSLO sample's xcbench SLOs too.
    let out = slo_rules(&["slo/openslo.sample.yaml", "-o", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("left out app-latency"),
        "{}",
        text(&out.stderr)
    );
    promtool(&promtool_bin, dir.path(), &["check", "rules", "rules.yml"]);
}

#[test]
fn bad_input_exits_2_naming_the_file_or_the_flag() {
    let _turn = machine::shared();
    let dir = TempDir::new("slo-rules-bad");
    let out = slo_rules(&["slo/slo.sample.yaml", "--period", "1d"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        "error: --period = \"1d\": must be from 6d to 365d: the shortest alert window (5m of a 30d period) scales with it and must be at least 1m\n"
    );
    let out = slo_rules(&["slo/slo.sample.yaml", "--period", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--period"),
        "{}",
        text(&out.stderr)
    );
    let bad = dir.write(
        "slo.yaml",
        "objectives:\n  - name: x\n    indicator: rtt\n    quantile: p99\n    at_most: 5x\n",
    );
    let out = slo_rules(&[bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("slo.yaml: objectives[0].at_most = \"5x\": must be a duration"),
        "{err}"
    );
    let missing = dir.path().join("missing.yaml");
    let out = slo_rules(&[missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.yaml: cannot read"));
    let out = slo_rules(&[
        "slo/slo.sample.yaml",
        "-o",
        dir.path().join("no/such/dir/rules.yml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--output "),
        "{}",
        text(&out.stderr)
    );
}
