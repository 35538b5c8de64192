//! `xcbench gate --report FILE.html`: one self-contained page (inline CSS and SVG, no
//! scripts, fonts or images from anywhere): the verdict, then per objective its reasons,
//! the latency distribution drawn from the histogram with the threshold on it (a CCDF on
//! log-log axes, where a tail reads at a glance), and the series over the window (per slot,
//! the fraction within the threshold or the loss ratio; per test, the goodput).

use std::fmt::Write as _;

use xcbench_slo::evidence::Distribution;
use xcbench_slo::judge::ObjectiveResult;
use xcbench_slo::objective::{Comparison, Indicator};
use xcbench_slo::text::{duration, format_time, percent, rate};
use xcbench_slo::{GateResult, Verdict};

use super::gate::bound_text;

const W: f64 = 640.0;
const H: f64 = 240.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn colour(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "#1a7f37",
        Verdict::Fail => "#cf222e",
        Verdict::Inconclusive => "#9a6700",
    }
}

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1000px;color:#1f2328;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:1px 8px;font-weight:600;font-size:13px;vertical-align:middle}
.objective{border:1px solid #d0d7de;border-radius:6px;padding:14px 16px;margin:16px 0}
.meta{color:#59636e;margin:2px 0 8px}
table{border-collapse:collapse;margin:8px 0}td,th{border-bottom:1px solid #d0d7de;padding:3px 10px 3px 0;text-align:left;font-size:13px}
ul{margin:6px 0 10px;padding-left:20px}
.charts{display:flex;flex-wrap:wrap;gap:8px}
svg.chart{border:1px solid #eaeef2;background:#fff}
svg text{font:11px system-ui,sans-serif;fill:#59636e}
.empty{color:#59636e;font-style:italic}";

/// The whole page.
pub fn render_report(g: &GateResult) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(
        out,
        "<title>xcbench gate: {}</title><style>{STYLE}</style></head><body>",
        g.verdict.as_str()
    );
    let s = &g.summary;
    let _ = write!(
        out,
        "<h1>xcbench gate <span class=\"badge\" id=\"verdict\" style=\"background:{}\">{}</span></h1>\
         <p class=\"meta\">Key objectives: {} passed, {} failed, {} inconclusive; warnings: {}. \
         Source: {}; evaluated at {}. Bounds are exact binomial (Clopper-Pearson), one-sided at \
         each objective's confidence.</p>",
        colour(g.verdict),
        g.verdict.as_str().to_uppercase(),
        s.key_pass,
        s.key_fail,
        s.key_inconclusive,
        s.warnings.len(),
        esc(&g.source),
        esc(&g.evaluated_at)
    );
    out.push_str("<table><tr><th>Objective</th><th>Threshold</th><th>Value</th><th>Samples</th><th>Bound</th><th>Verdict</th></tr>");
    for o in &g.objectives {
        let _ = write!(
            out,
            "<tr><td><a href=\"#o-{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"color:{}\">{}{}</td></tr>",
            anchor(&o.name),
            esc(&o.name),
            esc(&o.objective),
            esc(&o.value_text),
            o.samples,
            esc(&bound_text(o)),
            colour(o.verdict),
            o.verdict.as_str(),
            if o.key { "" } else { " (warning)" }
        );
    }
    out.push_str("</table>");
    for o in &g.objectives {
        objective_section(&mut out, o);
    }
    out.push_str("</body></html>\n");
    out
}

fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn objective_section(out: &mut String, o: &ObjectiveResult) {
    let _ = write!(
        out,
        "<section class=\"objective\" id=\"o-{}\"><h2>{} <span class=\"badge\" style=\"background:{}\">{}</span></h2>",
        anchor(&o.name),
        esc(&o.name),
        colour(o.verdict),
        o.verdict.as_str(),
    );
    let _ = write!(
        out,
        "<p class=\"meta\">{}{}: <b>{}</b> over {} .. {}; selection {}{}</p><ul>",
        esc(&o.indicator.to_string()),
        if o.key { "" } else { " (warning only)" },
        esc(&o.objective),
        format_time(o.window.from_unix_ns),
        format_time(o.window.to_unix_ns),
        esc(&o.select.to_string()),
        o.description
            .as_deref()
            .map(|d| format!(". {}", esc(d)))
            .unwrap_or_default()
    );
    for r in &o.reasons {
        let _ = write!(out, "<li>{}</li>", esc(r));
    }
    out.push_str("</ul><div class=\"charts\">");
    match o.comparison {
        Comparison::Latency {
            quantile,
            at_most_ns,
        } => {
            let mut curves = vec![("samples", "#0969da", &o.evidence.distribution)];
            if o.indicator == Indicator::RttIncreaseUnderLoad {
                curves[0].0 = "under load";
                if let Some(b) = &o.evidence.baseline {
                    curves.push(("idle", "#8250df", b));
                }
            }
            let threshold = if o.indicator == Indicator::RttIncreaseUnderLoad {
                None
            } else {
                Some(at_most_ns)
            };
            ccdf_chart(out, &curves, threshold, 1.0 - quantile.fraction());
            let q = quantile.fraction();
            slot_chart(
                out,
                o,
                &format!("fraction of samples <= {} per slot", duration(at_most_ns)),
                |s| (s.samples > 0).then(|| s.within as f64 / s.samples as f64),
                Some(q),
                percent,
                true,
            );
        }
        Comparison::Ratio { at_most } => {
            slot_chart(
                out,
                o,
                "lost / sent per slot (all directions)",
                |s| (s.sent > 0).then(|| s.lost as f64 / s.sent as f64),
                Some(at_most),
                percent,
                false,
            );
        }
        Comparison::Goodput {
            at_least_bits_per_second,
            ..
        } => goodput_chart(out, o, at_least_bits_per_second as f64),
        // The two windows' distributions on one chart; a ratio has no per-slot baseline.
        Comparison::NoWorse {
            quantile: Some(quantile),
            ..
        } => {
            let mut curves = vec![("window", "#0969da", &o.evidence.distribution)];
            if let Some(b) = &o.evidence.baseline {
                curves.push(("baseline", "#8250df", b));
            }
            ccdf_chart(out, &curves, None, 1.0 - quantile.fraction());
        }
        Comparison::NoWorse { quantile: None, .. } => {
            slot_chart(
                out,
                o,
                "lost / sent per slot (all directions)",
                |s| (s.sent > 0).then(|| s.lost as f64 / s.sent as f64),
                None,
                percent,
                false,
            );
        }
    }
    out.push_str("</div></section>");
}

fn frame(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<svg class=\"chart\" role=\"img\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>\
         <rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#d0d7de\"/>",
        esc(title),
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 6.0,
        esc(title)
    );
}

fn no_data(out: &mut String, title: &str) {
    frame(out, title);
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"empty\">no data in the window</text></svg>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        TOP + (H - TOP - BOTTOM) / 2.0
    );
}

/// Fraction of samples above each value, log-log: the threshold is a vertical line, the
/// objective (1 - quantile) a horizontal one; a curve that passes under their crossing
/// meets the objective.
fn ccdf_chart(
    out: &mut String,
    curves: &[(&str, &str, &Distribution)],
    threshold: Option<u64>,
    tail: f64,
) {
    let title = "latency distribution: fraction of samples above (log-log)";
    let n_max = curves.iter().map(|c| c.2.count()).max().unwrap_or(0);
    if n_max == 0 {
        return no_data(out, title);
    }
    let lo = curves
        .iter()
        .filter_map(|c| c.2.buckets.first().map(|b| b.low_ns))
        .chain(threshold)
        .min()
        .unwrap_or(1_000)
        .max(100) as f64
        / 1.5;
    let hi = curves
        .iter()
        .filter_map(|c| c.2.buckets.last().map(|b| b.high_ns))
        .chain(threshold)
        .max()
        .unwrap_or(1_000_000) as f64
        * 1.5;
    let y_min = (1.0 / (2.0 * n_max as f64)).min(tail / 2.0).max(1e-7);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |v: f64| LEFT + (v.ln() - lo.ln()) / (hi.ln() - lo.ln()) * pw;
    let y = |f: f64| TOP + (1.0f64.ln() - f.max(y_min).ln()) / (1.0f64.ln() - y_min.ln()) * ph;
    frame(out, title);
    // Decade ticks.
    let mut d = 10f64.powf(lo.log10().ceil());
    while d <= hi {
        let _ = write!(
            out,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{1}\" stroke=\"#eaeef2\"/><text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{3}</text>",
            x(d),
            TOP + ph,
            TOP + ph + 13.0,
            duration(d as u64)
        );
        d *= 10.0;
    }
    let mut f = 1.0;
    while f >= y_min {
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{0}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#eaeef2\"/><text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{4}</text>",
            LEFT + pw,
            y(f),
            LEFT - 4.0,
            y(f) + 4.0,
            percent(f)
        );
        f /= 10.0;
    }
    for (i, (label, colour, dist)) in curves.iter().enumerate() {
        let n = dist.count() as f64;
        if n == 0.0 {
            continue;
        }
        let mut points = format!(
            "{:.1},{:.1}",
            x(dist.buckets[0].low_ns.max(1) as f64),
            y(1.0)
        );
        let mut seen = 0u64;
        for b in &dist.buckets {
            let above_before = 1.0 - seen as f64 / n;
            seen += b.count;
            let above = 1.0 - seen as f64 / n;
            let _ = write!(
                points,
                " {:.1},{:.1} {:.1},{:.1}",
                x(b.high_ns.max(1) as f64),
                y(above_before),
                x(b.high_ns.max(1) as f64),
                y(above)
            );
        }
        let _ = write!(
            out,
            "<polyline class=\"curve\" points=\"{points}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.6\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{colour}\" style=\"fill:{colour}\">{} ({} samples)</text>",
            LEFT + pw - 150.0,
            TOP + 14.0 + 14.0 * i as f64,
            esc(label),
            dist.count()
        );
    }
    if let Some(t) = threshold {
        let _ = write!(
            out,
            "<line class=\"threshold\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{1}\" stroke=\"#cf222e\" stroke-dasharray=\"4 3\" stroke-width=\"1.5\"/><text x=\"{2:.1}\" y=\"{3}\" style=\"fill:#cf222e\">{4}</text>",
            x(t as f64),
            TOP + ph,
            x(t as f64) + 4.0,
            TOP + ph - 6.0,
            duration(t)
        );
    }
    if tail > 0.0 {
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{0}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#cf222e\" stroke-dasharray=\"2 3\"/><text x=\"{2}\" y=\"{3:.1}\" style=\"fill:#cf222e\">{4} above</text>",
            LEFT + pw,
            y(tail),
            LEFT + 4.0,
            y(tail) - 4.0,
            percent(tail)
        );
    }
    out.push_str("</svg>");
}

/// One value per slot over the window, with the objective's line; `fraction` caps the
/// axis at 100%.
fn slot_chart(
    out: &mut String,
    o: &ObjectiveResult,
    title: &str,
    value: impl Fn(&xcbench_slo::evidence::SlotPoint) -> Option<f64>,
    line: Option<f64>,
    label: fn(f64) -> String,
    fraction: bool,
) {
    let points: Vec<(u64, f64)> = o
        .evidence
        .slots
        .iter()
        .filter_map(|s| value(s).map(|v| (s.start_unix_ns + s.slot_ns / 2, v)))
        .collect();
    if points.is_empty() {
        return no_data(out, title);
    }
    let (t0, t1) = (
        o.window.from_unix_ns as f64,
        o.window.to_unix_ns.max(o.window.from_unix_ns + 1) as f64,
    );
    let v_max = points
        .iter()
        .map(|p| p.1)
        .chain(line)
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    // A fraction of samples never exceeds 1.
    let v_max = if fraction { v_max.min(1.0) } else { v_max };
    let v_min = points
        .iter()
        .map(|p| p.1)
        .chain(line)
        .fold(f64::INFINITY, f64::min)
        .min(v_max)
        .max(0.0);
    // Fractions near 1 read better from a floor under the lowest value.
    let v_min = if v_min > 0.5 {
        v_min - (v_max - v_min) * 0.2
    } else {
        0.0
    }
    .min(v_min);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |t: f64| LEFT + ((t - t0) / (t1 - t0)).clamp(0.0, 1.0) * pw;
    let y = |v: f64| TOP + (1.0 - (v - v_min) / (v_max - v_min).max(1e-12)) * ph;
    frame(out, title);
    for v in [v_min, (v_min + v_max) / 2.0, v_max] {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 4.0,
            y(v) + 4.0,
            label(v)
        );
    }
    let _ = write!(
        out,
        "<text x=\"{LEFT}\" y=\"{0}\">{1}</text><text x=\"{2}\" y=\"{0}\" text-anchor=\"end\">{3}</text>",
        TOP + ph + 13.0,
        format_time(o.window.from_unix_ns),
        LEFT + pw,
        format_time(o.window.to_unix_ns)
    );
    let path: Vec<String> = points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t as f64), y(*v)))
        .collect();
    let _ = write!(
        out,
        "<polyline class=\"curve\" points=\"{}\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.6\"/>",
        path.join(" ")
    );
    for (t, v) in &points {
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"#0969da\"/>",
            x(*t as f64),
            y(*v)
        );
    }
    if let Some(l) = line {
        let _ = write!(
            out,
            "<line class=\"threshold\" x1=\"{LEFT}\" x2=\"{0}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#cf222e\" stroke-dasharray=\"4 3\"/><text x=\"{2}\" y=\"{3:.1}\" style=\"fill:#cf222e\">{4}</text>",
            LEFT + pw,
            y(l),
            LEFT + 4.0,
            y(l) - 4.0,
            label(l)
        );
    }
    out.push_str("</svg>");
}

fn goodput_chart(out: &mut String, o: &ObjectiveResult, at_least: f64) {
    let title = "goodput per scheduled test";
    let tests = &o.evidence.tests;
    if tests.is_empty() {
        return no_data(out, title);
    }
    let (t0, t1) = (
        o.window.from_unix_ns as f64,
        o.window.to_unix_ns.max(o.window.from_unix_ns + 1) as f64,
    );
    let v_max = tests
        .iter()
        .map(|t| t.goodput_bits_per_second)
        .fold(at_least, f64::max)
        * 1.15;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |t: f64| LEFT + ((t - t0) / (t1 - t0)).clamp(0.0, 1.0) * pw;
    let y = |v: f64| TOP + (1.0 - v / v_max) * ph;
    frame(out, title);
    for v in [0.0, v_max / 2.0, v_max] {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 4.0,
            y(v) + 4.0,
            rate(v)
        );
    }
    for t in tests {
        let fill = if t.outcome != "ok" {
            "#9a6700"
        } else if t.goodput_bits_per_second >= at_least {
            "#1a7f37"
        } else {
            "#cf222e"
        };
        let _ = write!(
            out,
            "<rect class=\"curve\" x=\"{:.1}\" y=\"{:.1}\" width=\"6\" height=\"{:.1}\" fill=\"{fill}\"><title>{} {}</title></rect>",
            x(t.started_unix_ns as f64) - 3.0,
            y(t.goodput_bits_per_second),
            (TOP + ph - y(t.goodput_bits_per_second)).max(1.0),
            esc(&t.outcome),
            rate(t.goodput_bits_per_second)
        );
    }
    let _ = write!(
        out,
        "<line class=\"threshold\" x1=\"{LEFT}\" x2=\"{0}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#cf222e\" stroke-dasharray=\"4 3\"/><text x=\"{2}\" y=\"{3:.1}\" style=\"fill:#cf222e\">{4}</text></svg>",
        LEFT + pw,
        y(at_least),
        LEFT + 4.0,
        y(at_least) - 4.0,
        rate(at_least)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_is_one_page_with_a_chart_per_view() {
        let g = crate::output::gate::tests::fixed();
        let html = render_report(&g);
        assert!(html.starts_with("<!DOCTYPE html>"));
        // Self-contained: nothing fetched from anywhere.
        for outside in ["<script", "src=", "href=\"http", "@import", "url("] {
            assert!(!html.contains(outside), "{outside}");
        }
        // Latency objectives: a distribution and a series; ratios: a series.
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 2 + 1 + 2 + 1);
        assert_eq!(html.matches("class=\"threshold\"").count(), 2 + 1 + 2 + 1);
        assert_eq!(html.matches("<section class=\"objective\"").count(), 4);
        assert!(html.contains("forward loss 1.056% (380 of 36,000 probes)"));
        assert!(html.contains(">FAIL</span>"));
    }
}
