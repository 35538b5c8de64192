//! A dashboard: variables, panels grouped under rows, annotations; its rendering lays the
//! panels out left to right in rows 24 units wide.

use serde_json::{json, Value};

use super::panel::Panel;
use super::variable::Variable;
use super::DATASOURCE;

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
