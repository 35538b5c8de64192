//! What `xcbench gate` prints and writes: the table people read, JUnit XML for CI test
//! reports, and GitHub Actions workflow commands plus a Markdown step summary. The JSON is
//! `xcbench_slo::GateResult` serialized as it is (schema `xcbench.gate/v1`).

use std::fmt::Write as _;

use xcbench_slo::judge::{Bound, ObjectiveResult};
use xcbench_slo::text::{percent, signed_duration};
use xcbench_slo::{GateResult, Verdict};

/// A verdict as the table shows it: failures in capitals, warnings marked.
fn verdict_text(o: &ObjectiveResult) -> String {
    let v = match o.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
        Verdict::Inconclusive => "inconclusive",
    };
    if o.key || o.verdict == Verdict::Pass {
        v.to_owned()
    } else {
        format!("{} (warning)", v.to_lowercase())
    }
}

/// The bounds on the objective's statistic: `99.61%..99.97%` (each one-sided at the
/// confidence), `-` where the statistic has none (a maximum, every goodput test).
pub fn bound_text(o: &ObjectiveResult) -> String {
    let Some(Bound { lower, upper, .. }) = o.bound else {
        return "-".to_owned();
    };
    let increase = matches!(
        o.indicator,
        xcbench_slo::objective::Indicator::RttIncreaseUnderLoad
    );
    let show = |v: f64| {
        if increase {
            signed_duration((v * 1e9).round() as i64)
        } else {
            percent(v)
        }
    };
    let lo = lower.map_or_else(|| "-inf".to_owned(), show);
    let hi = upper.map_or_else(|| "+inf".to_owned(), show);
    format!("{lo}..{hi}")
}

fn summary_line(g: &GateResult) -> String {
    let s = &g.summary;
    format!(
        "xcbench gate: {}: key objectives {} passed, {} failed, {} inconclusive; warnings {}",
        g.verdict.as_str().to_uppercase(),
        s.key_pass,
        s.key_fail,
        s.key_inconclusive,
        s.warnings.len()
    )
}

/// The table: one row per objective, its reasons indented below it.
pub fn render_table(g: &GateResult) -> String {
    let headers = [
        "OBJECTIVE",
        "INDICATOR",
        "THRESHOLD",
        "VALUE",
        "SAMPLES",
        "BOUND",
        "VERDICT",
    ];
    let rows: Vec<[String; 7]> = g
        .objectives
        .iter()
        .map(|o| {
            [
                o.name.clone(),
                o.indicator.to_string(),
                o.objective.clone(),
                o.value_text.clone(),
                o.samples.to_string(),
                bound_text(o),
                verdict_text(o),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                let _ = write!(out, "{c:<w$}  ");
            }
        }
        out + "\n"
    };
    let mut out = summary_line(g) + "\n";
    let _ = writeln!(out, "source: {}; at {}", g.source, g.evaluated_at);
    let keys = g.objectives.iter().filter(|o| o.key).count();
    if keys > 1 {
        let fail = percent(g.summary.fail_confidence);
        let _ = match g.summary.family {
            xcbench_slo::Family::Holm => writeln!(
                out,
                "a fail of this gate is {fail} sure as a whole ({keys} key objectives, Holm's step-down)"
            ),
            xcbench_slo::Family::PerObjective => writeln!(
                out,
                "a fail of this gate is at least {fail} sure as a whole ({keys} key objectives, each at its own confidence; `family: holm` in the defaults holds the whole gate to it)"
            ),
        };
    }
    out.push('\n');
    out.push_str(&line(&headers.map(str::to_owned)));
    for (o, r) in g.objectives.iter().zip(&rows) {
        out.push_str(&line(r));
        for reason in &o.reasons {
            let _ = writeln!(out, "    {reason}");
        }
    }
    out
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// The facts of a result, one per line: value, threshold, bound, samples, reasons.
fn details(o: &ObjectiveResult) -> String {
    let mut out = format!(
        "objective: {} ({})\nvalue: {}\nsamples: {}\nbound: {} ({})\n",
        o.objective,
        o.indicator,
        o.value_text,
        o.samples,
        bound_text(o),
        o.statistic
    );
    let _ = writeln!(out, "select: {}", o.select);
    for r in &o.reasons {
        let _ = writeln!(out, "reason: {r}");
    }
    out
}

/// JUnit XML: a test case per objective. A failed key objective is a `<failure>`, an
/// inconclusive one an `<error type="inconclusive">` (the gate did not pass); warnings pass
/// with their verdict in `<system-out>`.
pub fn render_junit(g: &GateResult) -> String {
    let failures = g.summary.key_fail;
    let errors = g.summary.key_inconclusive;
    let n = g.objectives.len();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"xcbench gate\" tests=\"{n}\" failures=\"{failures}\" errors=\"{errors}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"xcbench gate\" tests=\"{n}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" timestamp=\"{}\">",
        xml(&g.evaluated_at)
    );
    let _ = writeln!(
        out,
        "    <properties>\n      <property name=\"verdict\" value=\"{}\"/>\n      <property name=\"source\" value=\"{}\"/>\n    </properties>",
        g.verdict.as_str(),
        xml(&g.source)
    );
    for o in &g.objectives {
        let _ = write!(
            out,
            "    <testcase classname=\"xcbench.gate\" name=\"{}\">",
            xml(&o.name)
        );
        let first = o.reasons.first().map_or("", String::as_str);
        let body = xml(&details(o));
        match (o.key, o.verdict) {
            (true, Verdict::Fail) => {
                let _ = write!(
                    out,
                    "\n      <failure type=\"fail\" message=\"{}: {} is {}; bound {}\">{body}</failure>\n    ",
                    xml(&o.objective),
                    xml(&o.statistic),
                    xml(&o.value_text),
                    xml(&bound_text(o))
                );
            }
            (true, Verdict::Inconclusive) => {
                let _ = write!(
                    out,
                    "\n      <error type=\"inconclusive\" message=\"{}\">{body}</error>\n    ",
                    xml(first)
                );
            }
            (_, Verdict::Pass) => {
                let _ = write!(out, "\n      <system-out>{body}</system-out>\n    ");
            }
            (false, v) => {
                let _ = write!(
                    out,
                    "\n      <system-out>warning: {}\n{body}</system-out>\n    ",
                    v.as_str()
                );
            }
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Escapes a workflow command's message (and, with `property`, a property value).
fn workflow(text: &str, property: bool) -> String {
    let mut out = text
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        out = out.replace(':', "%3A").replace(',', "%2C");
    }
    out
}

/// GitHub Actions workflow commands: `::error` for a failed key objective, `::warning` for
/// an inconclusive one and for warnings that did not pass.
pub fn github_annotations(g: &GateResult) -> String {
    let mut out = String::new();
    for o in &g.objectives {
        let level = match (o.key, o.verdict) {
            (_, Verdict::Pass) => continue,
            (true, Verdict::Fail) => "error",
            _ => "warning",
        };
        let title = format!("xcbench gate: {} {}", o.name, o.verdict.as_str());
        let message = format!("{}: {}", o.objective, o.reasons.join("; "));
        let _ = writeln!(
            out,
            "::{level} title={}::{}",
            workflow(&title, true),
            workflow(&message, false)
        );
    }
    out
}

fn md(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown step summary (`$GITHUB_STEP_SUMMARY`).
pub fn github_summary(g: &GateResult) -> String {
    let icon = |v: Verdict| match v {
        Verdict::Pass => "✅",
        Verdict::Fail => "❌",
        Verdict::Inconclusive => "⚠️",
    };
    let mut out = format!("### {} {}\n\n", icon(g.verdict), md(&summary_line(g)));
    let _ = writeln!(out, "Source: {}, at {}.\n", md(&g.source), g.evaluated_at);
    out.push_str("| Objective | Key | Threshold | Value | Samples | Bound | Verdict | Reason |\n");
    out.push_str("|---|---|---|---|---:|---|---|---|\n");
    for o in &g.objectives {
        let _ = writeln!(
            out,
            "| {} | {} | `{}` | {} | {} | {} | {} {} | {} |",
            md(&o.name),
            if o.key { "key" } else { "warning" },
            md(&o.objective),
            md(&o.value_text),
            o.samples,
            md(&bound_text(o)),
            icon(o.verdict),
            o.verdict.as_str(),
            md(&o.reasons.join("; "))
        );
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::output::check_golden;
    use xcbench_slo::evidence::{AgentRecord, Distribution, Evidence, SlotPoint};
    use xcbench_slo::{judge, SloFile};
    use xcbench_snapshot::Counters;

    const NOW: u64 = 1_796_065_200_000_000_000; // 2026-11-30T19:00:00Z
    const HOUR: u64 = 3_600_000_000_000;

    const SLO: &str = "\
objectives:
  - name: stamp-rtt-p99
    indicator: rtt
    quantile: p99
    at_most: 3ms
  - name: forward-loss
    indicator: loss
    direction: forward
    at_most: 0.1%
  - name: tcp-connect-p99
    indicator: tcp_connect
    quantile: p99
    at_most: 5ms
  - name: reorders
    indicator: reorders
    at_most: 0.01%
    key: false
";

    fn evidence(n: u64, slow: u64, counters: Counters) -> Evidence {
        Evidence {
            from_unix_ns: NOW - HOUR,
            to_unix_ns: NOW,
            covered: Some((NOW - HOUR, NOW)),
            series: 1,
            counters,
            distribution: Distribution::from_buckets(
                [(1_000_447, n - slow), (6_001_215, slow)],
                |h| h - h / 1_000,
            ),
            agents: vec![AgentRecord {
                agent: "azure-1".to_owned(),
                last_report_unix_ns: NOW - 5_000_000_000,
                gaps: vec![],
            }],
            // Six 10-minute slots; the slow samples and the losses all in the fourth.
            slots: (0..6u64)
                .map(|i| SlotPoint {
                    start_unix_ns: NOW - HOUR + i * HOUR / 6,
                    slot_ns: HOUR / 6,
                    sent: n / 6,
                    received: n / 6 - if i == 3 { counters.lost } else { 0 },
                    lost: if i == 3 { counters.lost } else { 0 },
                    samples: n / 6,
                    sum_ns: n / 6 * 1_000_447,
                    within: n / 6 - if i == 3 { slow } else { 0 },
                })
                .collect(),
            ..Evidence::default()
        }
    }

    /// A fixed gate: a pass, a forward-loss failure, an inconclusive (too few probes) and
    /// a failed warning.
    pub(crate) fn fixed() -> GateResult {
        let slo = SloFile::parse("slo.yaml", SLO).unwrap();
        let c = Counters {
            sent: 36_000,
            received: 35_600,
            lost: 400,
            lost_forward: 380,
            lost_reverse: 20,
            reordered: 9,
            ..Counters::default()
        };
        let results = vec![
            judge(&slo.objectives[0], evidence(36_000, 40, c), NOW),
            judge(&slo.objectives[1], evidence(36_000, 40, c), NOW),
            judge(
                &slo.objectives[2],
                evidence(
                    150,
                    0,
                    Counters {
                        sent: 150,
                        received: 150,
                        ..Counters::default()
                    },
                ),
                NOW,
            ),
            judge(&slo.objectives[3], evidence(36_000, 0, c), NOW),
        ];
        GateResult::new(
            "collector http://127.0.0.1:9862".into(),
            NOW,
            results,
            slo.family,
        )
    }

    #[test]
    fn golden_outputs() {
        let g = fixed();
        assert_eq!(g.verdict, Verdict::Fail);
        check_golden("gate_table.txt", &render_table(&g));
        check_golden(
            "gate.json",
            &(serde_json::to_string_pretty(&g).unwrap() + "\n"),
        );
        check_golden("gate_junit.xml", &render_junit(&g));
        check_golden("gate_github.txt", &github_annotations(&g));
        check_golden("gate_summary.md", &github_summary(&g));
    }

    #[test]
    fn escaping_keeps_markup_and_commands_intact() {
        assert_eq!(xml("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(workflow("50%\nx", false), "50%25%0Ax");
        assert_eq!(workflow("a:b,c", true), "a%3Ab%2Cc");
        assert_eq!(md("a|b"), "a\\|b");
    }
}
