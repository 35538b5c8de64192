//! xcbench SLOs: the SLO file, exact bounds, and the gate's verdicts. Sans-IO: a source
//! (the collector's history, a Prometheus server, a local measurement) turns each
//! objective into [`Evidence`]; [`judge`] turns evidence into a three-valued verdict with
//! its reasons; [`GateResult`] is the whole answer and its JSON schema (`xcbench.gate/v1`).
//!
//! # Layout
//! - [`file`]: the SLO file (xcbench's YAML format, OpenSLO v1 import) into [`Objective`]s.
//! - [`objective`]: what an objective asks: selection, indicator, comparison, window.
//! - [`evidence`]: what a source found for an objective.
//! - [`judge`](mod@judge): verdicts, reasons, the gate's overall answer.
//! - [`stats`]: Clopper-Pearson bounds and the trials that would decide.
//! - [`rules`](mod@rules): the objectives as Prometheus recording rules and multi-window,
//!   multi-burn-rate alerts (`xcbench slo rules`).
//! - [`text`]: how values are written and read (durations, ratios, rates, times).

#![forbid(unsafe_code)]

pub mod evidence;
pub mod file;
pub mod judge;
pub mod objective;
pub mod rules;
pub mod stats;
pub mod text;

pub use evidence::Evidence;
pub use file::SloFile;
pub use judge::{holm, judge, Family, GateResult, ObjectiveResult, Verdict};
pub use objective::Objective;
