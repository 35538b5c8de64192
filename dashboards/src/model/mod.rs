//! The dashboard model the descriptions are written in, and its one rendering to Grafana's
//! classic dashboard JSON (the model file provisioning loads). Layout is computed here:
//! panels flow left to right in rows 24 units wide, so no description places a panel by hand.
//!
//! # Layout
//! - `panel`: panels, their kinds, units, value mappings and links; a panel's JSON.
//! - `target`: a panel's PromQL queries and their JSON.
//! - `variable`: template variables (datasource, label values, custom, textbox).
//! - `dashboard`: the dashboard, its rows and annotations, and the layout that places panels.

mod dashboard;
mod panel;
mod target;
mod variable;

pub use dashboard::{Annotation, Dashboard};
pub use panel::{Kind, Link, Mapping, Panel, Unit};
pub use target::{Format, Target};
pub use variable::{QueryVariable, Variable};

/// The datasource every panel, target, variable and annotation reads: the dashboard's
/// `datasource` variable.
pub const DATASOURCE: &str = "${datasource}";

#[cfg(test)]
mod tests {
    use super::target::ref_id;
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
