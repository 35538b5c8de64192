//! `xcbench slo`: what an SLO file becomes besides the gate's verdict. `xcbench slo rules`
//! loads the file and writes its objectives as a Prometheus rule file
//! ([`xcbench_slo::rules`]); [`rules`] is the one path the command line and the golden
//! files both take.

use std::path::Path;
use std::time::Duration;

use xcbench_slo::rules::{RulesError, DEFAULT_PERIOD};
use xcbench_slo::SloFile;
use xcbench_snapshot::config_text::ConfigError;

/// A rule file made from an SLO file, and what was left out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFile {
    /// The YAML text.
    pub yaml: String,
    /// Objectives in the SLO file.
    pub objectives: usize,
    /// Objectives with rules.
    pub with_rules: usize,
    /// Why some objectives (or OpenSLO documents) have no rules, one line each.
    pub left_out: Vec<String>,
}

/// Why no rule file was made; both are the SLO file's or the flags' fault (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SloError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Rules(#[from] RulesError),
}

/// `xcbench slo rules SLO_FILE [--period P]`: the file's objectives as Prometheus rules,
/// error budgets spent over `period` (30 days when None).
pub fn rules(slo: &Path, period: Option<Duration>) -> Result<RuleFile, SloError> {
    let file = SloFile::load(slo)?;
    let rules = xcbench_slo::rules::rules(&file.objectives, period.unwrap_or(DEFAULT_PERIOD))?;
    let left_out = file
        .skipped
        .iter()
        .cloned()
        .chain(rules.left_out.iter().map(ToString::to_string))
        .collect();
    Ok(RuleFile {
        yaml: rules.yaml,
        objectives: file.objectives.len(),
        with_rules: file.objectives.len() - rules.left_out.len(),
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::check_golden;

    fn repo(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    #[test]
    fn golden_rules_of_the_sample_slo() {
        let r = rules(&repo("slo/slo.sample.yaml"), None).unwrap();
        check_golden("slo_rules.yml", &r.yaml);
        assert_eq!((r.with_rules, r.objectives), (12, 15));
        assert_eq!(r.left_out.len(), 3);
        assert!(r.left_out[0].starts_with("rtt-under-load (rtt_increase_under_load): "));
    }

    /// dashboards/xcbench.slo.rules.yml is what `promtool test rules` exercises: it must
    /// be the generator's output for dashboards/slo.test.yaml, byte for byte
    /// (`XCBENCH_UPDATE_GOLDEN=1` rewrites it too).
    #[test]
    fn the_committed_test_rules_are_the_generators() {
        let r = rules(&repo("dashboards/slo.test.yaml"), None).unwrap();
        let path = repo("dashboards/xcbench.slo.rules.yml");
        if std::env::var_os("XCBENCH_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &r.yaml).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            r.yaml, want,
            "dashboards/xcbench.slo.rules.yml is not `xcbench slo rules dashboards/slo.test.yaml`; review, then XCBENCH_UPDATE_GOLDEN=1"
        );
    }

    #[test]
    fn openslo_files_make_rules_too() {
        let r = rules(&repo("slo/openslo.sample.yaml"), None).unwrap();
        assert!(r
            .yaml
            .contains("- name: \"xcbench-slo/interconnect-rtt/p99\""));
        assert!(r.yaml.contains("xcbench_slo_interconnect_rtt_p99_page"));
        // The document with a Prometheus metric source is not xcbench's.
        assert!(
            r.left_out.iter().any(|l| l.contains("app-latency")),
            "{:?}",
            r.left_out
        );
    }

    #[test]
    fn bad_input_names_the_file_or_the_flag() {
        let e = rules(&repo("slo/nonexistent.yaml"), None).unwrap_err();
        assert!(
            matches!(e, SloError::Config(ConfigError::Read { .. })),
            "{e}"
        );
        let e = rules(
            &repo("slo/slo.sample.yaml"),
            Some(Duration::from_secs(86_400)),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--period = \"1d\": must be from 6d to 365d"),
            "{e}"
        );
    }
}
