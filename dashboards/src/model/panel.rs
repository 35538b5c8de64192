//! A panel: what it shows (kind, title, description, unit, thresholds, mappings, links) and
//! how it is computed (targets), and its rendering at a place in the grid.

use serde_json::{json, Map, Value};

use super::target::{render_target, Target};
use super::DATASOURCE;

/// Grafana's unit ids, the few the dashboards use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    /// A ratio shown as percent (0.01 = 1%).
    Ratio,
    BitsPerSecond,
    Bytes,
    /// Events per second.
    PerSecond,
    /// A count or a plain number.
    Count,
    /// Unix time in milliseconds shown as a date.
    DateTime,
}

impl Unit {
    pub fn id(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Ratio => "percentunit",
            Unit::BitsPerSecond => "bps",
            Unit::Bytes => "bytes",
            Unit::PerSecond => "ops",
            Unit::Count => "short",
            Unit::DateTime => "dateTimeAsIso",
        }
    }
}
/// The visualisations used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    TimeSeries,
    Stat,
    Table,
    Heatmap,
    StateTimeline,
    BarGauge,
}

impl Kind {
    pub fn id(self) -> &'static str {
        match self {
            Kind::TimeSeries => "timeseries",
            Kind::Stat => "stat",
            Kind::Table => "table",
            Kind::Heatmap => "heatmap",
            Kind::StateTimeline => "state-timeline",
            Kind::BarGauge => "bargauge",
        }
    }

    fn default_height(self) -> u32 {
        match self {
            Kind::Stat => 4,
            Kind::Table => 9,
            _ => 8,
        }
    }
}

/// A value mapping: `value` (or null/NaN with [`Mapping::missing`]) shown as `text` in `color`.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub value: Option<String>,
    pub text: String,
    pub color: String,
}

impl Mapping {
    pub fn value(value: &str, text: &str, color: &str) -> Mapping {
        Mapping {
            value: Some(value.into()),
            text: text.into(),
            color: color.into(),
        }
    }

    /// No value, or NaN (no samples in the range): "no data" in grey.
    pub fn missing() -> Mapping {
        Mapping {
            value: None,
            text: "no data".into(),
            color: "#8e8e8e".into(),
        }
    }
}

/// A link from a panel (or a table cell) to another dashboard.
#[derive(Debug, Clone)]
pub struct Link {
    pub title: String,
    pub url: String,
}

/// One panel: what it shows (title, description) and how it is computed (targets).
#[derive(Debug, Clone)]
pub struct Panel {
    pub kind: Kind,
    pub title: String,
    pub description: String,
    pub unit: Unit,
    pub targets: Vec<Target>,
    pub width: u32,
    pub height: u32,
    /// Threshold steps: the base colour, then (value, colour) upward.
    pub thresholds: Option<(String, Vec<(f64, String)>)>,
    pub mappings: Vec<Mapping>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub decimals: Option<u32>,
    /// Field links (per value or table cell), e.g. to the pair dashboard.
    pub links: Vec<Link>,
    pub transformations: Vec<Value>,
    /// Panel options, merged over the kind's defaults.
    pub options: Value,
    /// `fieldConfig.defaults.custom`, merged over the kind's defaults.
    pub custom: Value,
    pub overrides: Vec<Value>,
}

impl Panel {
    pub fn new(kind: Kind, title: &str, description: &str, unit: Unit) -> Panel {
        Panel {
            kind,
            title: title.into(),
            description: description.into(),
            unit,
            targets: Vec::new(),
            width: 12,
            height: kind.default_height(),
            thresholds: None,
            mappings: Vec::new(),
            min: None,
            max: None,
            decimals: None,
            links: Vec::new(),
            transformations: Vec::new(),
            options: json!({}),
            custom: json!({}),
            overrides: Vec::new(),
        }
    }

    pub fn target(mut self, t: Target) -> Panel {
        self.targets.push(t);
        self
    }

    pub fn targets(mut self, t: impl IntoIterator<Item = Target>) -> Panel {
        self.targets.extend(t);
        self
    }

    pub fn size(mut self, width: u32, height: u32) -> Panel {
        self.width = width;
        self.height = height;
        self
    }

    pub fn thresholds(mut self, base: &str, steps: &[(f64, &str)]) -> Panel {
        self.thresholds = Some((
            base.into(),
            steps.iter().map(|(v, c)| (*v, (*c).to_owned())).collect(),
        ));
        self
    }

    pub fn mapping(mut self, m: Mapping) -> Panel {
        self.mappings.push(m);
        self
    }

    pub fn min(mut self, v: f64) -> Panel {
        self.min = Some(v);
        self
    }

    pub fn max(mut self, v: f64) -> Panel {
        self.max = Some(v);
        self
    }

    pub fn decimals(mut self, d: u32) -> Panel {
        self.decimals = Some(d);
        self
    }

    pub fn link(mut self, title: &str, url: &str) -> Panel {
        self.links.push(Link {
            title: title.into(),
            url: url.into(),
        });
        self
    }

    pub fn transform(mut self, id: &str, options: Value) -> Panel {
        self.transformations
            .push(json!({ "id": id, "options": options }));
        self
    }

    pub fn options(mut self, v: Value) -> Panel {
        merge(&mut self.options, v);
        self
    }

    pub fn custom(mut self, v: Value) -> Panel {
        merge(&mut self.custom, v);
        self
    }

    /// Properties for the fields of one query (by its refId: "A", "B", ...).
    pub fn override_by_query(mut self, ref_id: &str, properties: Value) -> Panel {
        self.overrides.push(json!({
            "matcher": { "id": "byFrameRefID", "options": ref_id },
            "properties": properties,
        }));
        self
    }

    pub fn override_by_name(mut self, name: &str, properties: Value) -> Panel {
        self.overrides.push(json!({
            "matcher": { "id": "byName", "options": name },
            "properties": properties,
        }));
        self
    }

    pub fn override_by_regex(mut self, pattern: &str, properties: Value) -> Panel {
        self.overrides.push(json!({
            "matcher": { "id": "byRegexp", "options": pattern },
            "properties": properties,
        }));
        self
    }

    pub(super) fn render(&self, id: u32, x: u32, y: u32) -> Value {
        let mut options = self.default_options();
        merge(&mut options, self.options.clone());
        let mut custom = self.default_custom();
        merge(&mut custom, self.custom.clone());
        // A cell type replaces the default's whole (its options differ by type).
        if let Some(cell) = self.custom.get("cellOptions") {
            custom["cellOptions"] = cell.clone();
        }
        let mut defaults = Map::new();
        defaults.insert("unit".into(), json!(self.unit.id()));
        defaults.insert("custom".into(), custom);
        defaults.insert("color".into(), self.color());
        let (base, steps) = self
            .thresholds
            .clone()
            .unwrap_or_else(|| ("green".into(), Vec::new()));
        let mut threshold_steps = vec![json!({ "color": base, "value": null })];
        threshold_steps.extend(steps.iter().map(|(v, c)| json!({ "color": c, "value": v })));
        defaults.insert(
            "thresholds".into(),
            json!({ "mode": "absolute", "steps": threshold_steps }),
        );
        // A table's text columns must not read as NaN: there the missing mapping matches
        // null only, and NaN on number columns (first override, so later ones may clear it).
        let table = self.kind == Kind::Table;
        defaults.insert(
            "mappings".into(),
            Value::Array(
                self.mappings
                    .iter()
                    .map(|m| render_mapping(m, if table { "null" } else { "null+nan" }))
                    .collect(),
            ),
        );
        let mut overrides = self.overrides.clone();
        if table && self.mappings.iter().any(|m| m.value.is_none()) {
            overrides.insert(
                0,
                json!({
                    "matcher": { "id": "byType", "options": "number" },
                    "properties": [{
                        "id": "mappings",
                        "value": self.mappings.iter().map(|m| render_mapping(m, "null+nan")).collect::<Vec<_>>(),
                    }],
                }),
            );
        }
        if let Some(v) = self.min {
            defaults.insert("min".into(), json!(v));
        }
        if let Some(v) = self.max {
            defaults.insert("max".into(), json!(v));
        }
        if let Some(d) = self.decimals {
            defaults.insert("decimals".into(), json!(d));
        }
        if !self.links.is_empty() {
            defaults.insert(
                "links".into(),
                Value::Array(
                    self.links
                        .iter()
                        .map(|l| json!({ "title": l.title, "url": l.url }))
                        .collect(),
                ),
            );
        }
        let targets: Vec<Value> = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| render_target(t, i))
            .collect();
        json!({
            "id": id,
            "type": self.kind.id(),
            "title": self.title,
            "description": self.description,
            "datasource": { "type": "prometheus", "uid": DATASOURCE },
            "gridPos": { "h": self.height, "w": self.width, "x": x, "y": y },
            "fieldConfig": { "defaults": Value::Object(defaults), "overrides": overrides },
            "options": options,
            "targets": targets,
            "transformations": self.transformations,
        })
    }

    fn color(&self) -> Value {
        match self.kind {
            Kind::TimeSeries => json!({ "mode": "palette-classic" }),
            Kind::Heatmap => json!({ "mode": "thresholds" }),
            _ => json!({ "mode": "thresholds" }),
        }
    }

    fn default_options(&self) -> Value {
        match self.kind {
            Kind::TimeSeries => json!({
                "legend": { "displayMode": "table", "placement": "bottom", "showLegend": true,
                            "calcs": ["mean", "max", "lastNotNull"] },
                "tooltip": { "mode": "multi", "sort": "desc" },
            }),
            Kind::Stat => json!({
                "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
                "colorMode": "background",
                "graphMode": "area",
                "justifyMode": "auto",
                "orientation": "auto",
                "textMode": "auto",
                "showPercentChange": false,
                "percentChangeColorMode": "standard",
                "wideLayout": true,
            }),
            Kind::Table => json!({
                "showHeader": true,
                "cellHeight": "sm",
                "frameIndex": 0,
            }),
            Kind::Heatmap => json!({
                "calculate": false,
                "cellGap": 1,
                "color": { "mode": "scheme", "scheme": "Spectral", "fill": "dark-orange",
                           "scale": "exponential", "exponent": 0.5, "steps": 64,
                           "reverse": false },
                "yAxis": { "axisPlacement": "left", "unit": self.unit.id(), "reverse": false },
                "rowsFrame": { "layout": "auto" },
                "filterValues": { "le": 1e-9 },
                "legend": { "show": true },
                "tooltip": { "mode": "single", "yHistogram": true, "showColorScale": false },
                "exemplars": { "color": "rgba(255,0,255,0.7)" },
                "cellValues": {},
                "showValue": "auto",
            }),
            Kind::StateTimeline => json!({
                "mergeValues": true,
                "showValue": "auto",
                "alignValue": "left",
                "rowHeight": 0.9,
                "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true, "calcs": [] },
                "tooltip": { "mode": "single", "sort": "none" },
            }),
            Kind::BarGauge => json!({
                "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
                "displayMode": "gradient",
                "orientation": "horizontal",
                "showUnfilled": true,
                "valueMode": "color",
                "namePlacement": "auto",
                "sizing": "auto",
                "minVizHeight": 16,
                "minVizWidth": 8,
                "maxVizHeight": 300,
                "legend": { "displayMode": "list", "placement": "bottom", "showLegend": false, "calcs": [] },
            }),
        }
    }

    fn default_custom(&self) -> Value {
        match self.kind {
            Kind::TimeSeries => json!({
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 0,
                "showPoints": "never",
                "spanNulls": false,
                "axisPlacement": "auto",
            }),
            Kind::Table => json!({
                "align": "auto",
                "cellOptions": { "type": "color-background", "mode": "basic" },
                "inspect": false,
            }),
            Kind::StateTimeline => json!({ "fillOpacity": 80, "lineWidth": 0 }),
            Kind::Heatmap => json!({
                "scaleDistribution": { "type": "linear" },
                "hideFrom": { "legend": false, "tooltip": false, "viz": false },
            }),
            Kind::Stat | Kind::BarGauge => json!({}),
        }
    }
}

fn render_mapping(m: &Mapping, missing: &str) -> Value {
    match &m.value {
        Some(v) => json!({
            "type": "value",
            "options": { v.as_str(): { "text": m.text, "color": m.color, "index": 0 } },
        }),
        None => json!({
            "type": "special",
            "options": { "match": missing, "result": { "text": m.text, "color": m.color, "index": 0 } },
        }),
    }
}
/// Merges `over` into `base`, objects key by key; anything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}
