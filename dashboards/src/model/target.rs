//! A panel's PromQL queries (targets) and their JSON, named `A`, `B`, ... as Grafana does.

use serde_json::{json, Value};

use super::DATASOURCE;

/// How a target's result is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TimeSeries,
    Table,
    Heatmap,
}

/// One PromQL query of a panel.
#[derive(Debug, Clone)]
pub struct Target {
    pub expr: String,
    pub legend: String,
    pub format: Format,
    /// One value at the end of the range (tables, stats over `$__range`).
    pub instant: bool,
}

impl Target {
    /// A range query drawn as series named by `legend`.
    pub fn series(expr: impl Into<String>, legend: impl Into<String>) -> Target {
        Target {
            expr: expr.into(),
            legend: legend.into(),
            format: Format::TimeSeries,
            instant: false,
        }
    }

    /// An instant query at the end of the range, as a table.
    pub fn table(expr: impl Into<String>) -> Target {
        Target {
            expr: expr.into(),
            legend: String::new(),
            format: Format::Table,
            instant: true,
        }
    }

    /// An instant query at the end of the range, as one value per series (stats, gauges).
    pub fn instant(expr: impl Into<String>, legend: impl Into<String>) -> Target {
        Target {
            instant: true,
            ..Target::series(expr, legend)
        }
    }

    /// Histogram buckets per `le`, drawn as a heatmap without re-bucketing.
    pub fn heatmap(expr: impl Into<String>) -> Target {
        Target {
            expr: expr.into(),
            legend: "{{le}}".into(),
            format: Format::Heatmap,
            instant: false,
        }
    }
}
pub(super) fn render_target(t: &Target, i: usize) -> Value {
    let format = match t.format {
        Format::TimeSeries => "time_series",
        Format::Table => "table",
        Format::Heatmap => "heatmap",
    };
    json!({
        "refId": ref_id(i),
        "datasource": { "type": "prometheus", "uid": DATASOURCE },
        "expr": t.expr,
        "legendFormat": if t.legend.is_empty() { "__auto" } else { t.legend.as_str() },
        "format": format,
        "instant": t.instant,
        "range": !t.instant,
        "editorMode": "code",
    })
}

/// `A`, `B`, ... as Grafana names a panel's queries.
pub(super) fn ref_id(i: usize) -> String {
    let letter = char::from(b'A' + u8::try_from(i % 26).expect("below 26"));
    if i < 26 {
        letter.to_string()
    } else {
        format!("{letter}{}", i / 26)
    }
}
