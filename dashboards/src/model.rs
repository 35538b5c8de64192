//! The dashboard model the descriptions are written in, and its one rendering to Grafana's
//! classic dashboard JSON (the model file provisioning loads). Layout is computed here:
//! panels flow left to right in rows 24 units wide, so no description places a panel by hand.

use serde_json::{json, Map, Value};

/// The datasource every panel, target, variable and annotation reads: the dashboard's
/// `datasource` variable.
pub const DATASOURCE: &str = "${datasource}";

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

    fn render(&self, id: u32, x: u32, y: u32) -> Value {
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

fn render_target(t: &Target, i: usize) -> Value {
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
fn ref_id(i: usize) -> String {
    let letter = char::from(b'A' + u8::try_from(i % 26).expect("below 26"));
    if i < 26 {
        letter.to_string()
    } else {
        format!("{letter}{}", i / 26)
    }
}

/// A variable whose values are a label's among series matching a selector.
#[derive(Debug, Clone)]
pub struct QueryVariable {
    pub name: String,
    pub label: String,
    pub description: String,
    /// `label_values(<selector>, <label>)`.
    pub selector: String,
    pub values_of: String,
    pub multi: bool,
    /// Whether "All" (`.*`) is offered.
    pub all: bool,
    /// Selected at first load instead of Grafana's first value.
    pub default: Option<String>,
}

/// A template variable.
#[derive(Debug, Clone)]
pub enum Variable {
    /// The Prometheus datasource every query reads.
    Datasource,
    /// Label values of series matching a selector (which may use earlier variables).
    Query(QueryVariable),
    /// A fixed list; the first is the default.
    Custom {
        name: String,
        label: String,
        description: String,
        options: Vec<String>,
    },
    /// A number the reader can edit (e.g. a threshold), with its default.
    Textbox {
        name: String,
        label: String,
        description: String,
        default: String,
    },
}

impl Variable {
    /// The values of `label` among series matching `selector`, single-valued with "All".
    pub fn query(
        name: &str,
        label: &str,
        description: &str,
        selector: &str,
        values_of: &str,
    ) -> Variable {
        Variable::Query(QueryVariable {
            name: name.into(),
            label: label.into(),
            description: description.into(),
            selector: selector.into(),
            values_of: values_of.into(),
            multi: false,
            all: true,
            default: None,
        })
    }

    /// As [`Variable::query`], several values selectable.
    pub fn multi(self) -> Variable {
        self.with(|q| q.multi = true)
    }

    /// As [`Variable::query`], starting at `value`.
    pub fn starting_at(self, value: &str) -> Variable {
        self.with(|q| q.default = Some(value.into()))
    }

    /// As [`Variable::query`], without "All" (a choice that makes no sense aggregated, such
    /// as the two ends of the pair dashboard).
    pub fn one_of(self) -> Variable {
        self.with(|q| q.all = false)
    }

    fn with(self, f: impl FnOnce(&mut QueryVariable)) -> Variable {
        match self {
            Variable::Query(mut q) => {
                f(&mut q);
                Variable::Query(q)
            }
            other => other,
        }
    }

    pub fn custom(name: &str, label: &str, description: &str, options: &[&str]) -> Variable {
        Variable::Custom {
            name: name.into(),
            label: label.into(),
            description: description.into(),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    pub fn textbox(name: &str, label: &str, description: &str, default: &str) -> Variable {
        Variable::Textbox {
            name: name.into(),
            label: label.into(),
            description: description.into(),
            default: default.into(),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Variable::Datasource => "datasource",
            Variable::Query(QueryVariable { name, .. })
            | Variable::Custom { name, .. }
            | Variable::Textbox { name, .. } => name,
        }
    }

    fn render(&self) -> Value {
        match self {
            Variable::Datasource => json!({
                "type": "datasource",
                "name": "datasource",
                "label": "Prometheus",
                "description": "The Prometheus (or Thanos, Mimir) that scrapes the xcbench collector.",
                "query": "prometheus",
                "hide": 0,
                "includeAll": false,
                "multi": false,
                "options": [],
                "refresh": 1,
                "regex": "",
            }),
            Variable::Query(QueryVariable {
                name,
                label,
                description,
                selector,
                values_of,
                multi,
                all,
                default,
            }) => {
                let query = format!("label_values({selector}, {values_of})");
                let mut v = json!({
                    "type": "query",
                    "name": name,
                    "label": label,
                    "description": description,
                    "datasource": { "type": "prometheus", "uid": DATASOURCE },
                    "query": { "qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery" },
                    "hide": 0,
                    "includeAll": all,
                    "multi": multi,
                    "options": [],
                    "refresh": 2,
                    "regex": "",
                    "sort": 1,
                });
                if *all {
                    v["allValue"] = json!(".*");
                }
                if let Some(d) = default {
                    v["current"] = json!({ "selected": true, "text": d, "value": d });
                }
                v
            }
            Variable::Custom {
                name,
                label,
                description,
                options,
            } => {
                let first = options.first().cloned().unwrap_or_default();
                json!({
                    "type": "custom",
                    "name": name,
                    "label": label,
                    "description": description,
                    "query": options.join(","),
                    "current": { "selected": true, "text": first, "value": first },
                    "hide": 0,
                    "includeAll": false,
                    "multi": false,
                    "options": options.iter().enumerate().map(|(i, o)| json!({
                        "selected": i == 0, "text": o, "value": o,
                    })).collect::<Vec<_>>(),
                })
            }
            Variable::Textbox {
                name,
                label,
                description,
                default,
            } => json!({
                "type": "textbox",
                "name": name,
                "label": label,
                "description": description,
                "query": default,
                "current": { "selected": false, "text": default, "value": default },
                "hide": 0,
                "options": [{ "selected": true, "text": default, "value": default }],
            }),
        }
    }
}

/// An annotation query over the dashboard's time range.
#[derive(Debug, Clone)]
pub struct Annotation {
    pub name: String,
    pub expr: String,
    pub title: String,
    pub text: String,
    pub color: String,
}

/// A dashboard: variables, panels grouped under rows, annotations.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Also the file name: `grafana/<uid>.json`.
    pub uid: String,
    pub title: String,
    pub description: String,
    pub variables: Vec<Variable>,
    pub rows: Vec<(String, Vec<Panel>)>,
    pub annotations: Vec<Annotation>,
    pub time_from: String,
}

impl Dashboard {
    pub fn new(uid: &str, title: &str, description: &str) -> Dashboard {
        Dashboard {
            uid: uid.into(),
            title: title.into(),
            description: description.into(),
            variables: vec![Variable::Datasource],
            rows: Vec::new(),
            annotations: Vec::new(),
            time_from: "now-6h".into(),
        }
    }

    pub fn var(mut self, v: Variable) -> Dashboard {
        self.variables.push(v);
        self
    }

    pub fn row(mut self, title: &str, panels: Vec<Panel>) -> Dashboard {
        self.rows.push((title.into(), panels));
        self
    }

    pub fn annotate(mut self, a: Annotation) -> Dashboard {
        self.annotations.push(a);
        self
    }

    /// Every panel, in order.
    pub fn panels(&self) -> impl Iterator<Item = &Panel> {
        self.rows.iter().flat_map(|(_, p)| p)
    }

    /// Grafana's JSON model.
    pub fn render(&self) -> Value {
        let mut panels = Vec::new();
        let mut id = 1;
        let mut y = 0;
        for (title, row) in &self.rows {
            panels.push(json!({
                "id": id,
                "type": "row",
                "title": title,
                "collapsed": false,
                "gridPos": { "h": 1, "w": 24, "x": 0, "y": y },
                "panels": [],
            }));
            id += 1;
            y += 1;
            let (mut x, mut line_height) = (0, 0);
            for p in row {
                if x + p.width > 24 {
                    y += line_height;
                    x = 0;
                    line_height = 0;
                }
                panels.push(p.render(id, x, y));
                id += 1;
                x += p.width;
                line_height = line_height.max(p.height);
            }
            y += line_height;
        }
        let mut annotations = vec![json!({
            "builtIn": 1,
            "datasource": { "type": "grafana", "uid": "-- Grafana --" },
            "enable": true,
            "hide": true,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        })];
        annotations.extend(self.annotations.iter().map(|a| {
            json!({
                "name": a.name,
                "datasource": { "type": "prometheus", "uid": DATASOURCE },
                "enable": true,
                "hide": false,
                "iconColor": a.color,
                "expr": a.expr,
                "titleFormat": a.title,
                "textFormat": a.text,
                "tagKeys": "src_agent,dst_agent,protocol",
                "useValueForTime": false,
            })
        }));
        json!({
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["xcbench"],
            "editable": true,
            "graphTooltip": 1,
            "fiscalYearStartMonth": 0,
            "liveNow": false,
            "refresh": "1m",
            "schemaVersion": 39,
            "version": 1,
            "weekStart": "",
            "timezone": "utc",
            "time": { "from": self.time_from, "to": "now" },
            "timepicker": {},
            "links": [{
                "title": "xcbench",
                "type": "dashboards",
                "tags": ["xcbench"],
                "asDropdown": true,
                "includeVars": false,
                "keepTime": true,
                "icon": "external link",
                "targetBlank": false,
                "tooltip": "",
                "url": "",
            }],
            "annotations": { "list": annotations },
            "templating": { "list": self.variables.iter().map(Variable::render).collect::<Vec<_>>() },
            "panels": panels,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_flow_left_to_right_and_wrap() {
        let p = |w| Panel::new(Kind::Stat, "t", "d", Unit::Count).size(w, 4);
        let d = Dashboard::new("u", "T", "D").row("R", vec![p(12), p(12), p(8)]);
        let v = d.render();
        let pos: Vec<(u64, u64)> = v["panels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["gridPos"]["x"].as_u64().unwrap(),
                    p["gridPos"]["y"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(pos, vec![(0, 0), (0, 1), (12, 1), (0, 5)]);
    }

    #[test]
    fn ref_ids_are_letters() {
        assert_eq!(ref_id(0), "A");
        assert_eq!(ref_id(25), "Z");
        assert_eq!(ref_id(26), "A1");
    }
}
