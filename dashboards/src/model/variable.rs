//! Template variables: the datasource, a label's values among matching series, a fixed list,
//! a text box; and their JSON.

use serde_json::{json, Value};

use super::DATASOURCE;

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

    pub(super) fn render(&self) -> Value {
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
