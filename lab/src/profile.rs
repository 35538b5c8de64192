//! Named link profiles for the lab and `--set KEY=VALUE` overrides.
//!
//! "forward" is azure -> oci, "reverse" is oci -> azure. Region-pair figures are plausible
//! interconnect values for the four pairs where the Azure-OCI interconnect launched (about
//! 1-2 ms RTT, 1400-byte MTU); they are not measurements of those links.
//!
//! Keys: `delay`, `jitter`, `jitter_distribution` (uniform|normal), `jitter_reorders`
//! (true|false), `loss`, `burst_p`, `burst_r`, `burst_loss_good`, `burst_loss_bad`,
//! `duplicate`, `reorder`, `reorder_gap`, `rate` (e.g. 200mbit; 0 = unlimited), `queue`
//! (longest queueing delay before drop). Prefix `forward.` or `reverse.` for one direction;
//! without a prefix a key sets both. `mtu` is for the whole link. Probabilities are `1%` or
//! `0.01`; durations `250us`, `3ms`, `1s`.
//!
//! Prefix `ecmp.` (then optionally `forward.` or `reverse.`) for a second equal-cost path:
//! the link becomes two paths, ECMP-hashed by 5-tuple, the second one the first with these
//! keys set on top (whatever order the keys come in).

use serde::{Deserialize, Serialize};

use super::link::{GilbertElliott, Impairments, JitterDistribution};
use xcbench_snapshot::Expected;

/// A whole lab link: impairments each way and the MTU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkProfile {
    pub name: String,
    pub forward: Impairments,
    pub reverse: Impairments,
    pub mtu: usize,
    /// `ecmp.*` overrides, in order: a second path, the first one with these set on top.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecmp: Vec<(String, String)>,
}

/// Profile names, for help and errors.
pub const PROFILES: &[&str] = &[
    "clean",
    "eastus-ashburn",
    "uksouth-london",
    "canadacentral-toronto",
    "westeurope-amsterdam",
    "lossy",
    "bursty",
    "bufferbloat",
];

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

fn interconnect(one_way_ns: u64, jitter_ns: u64) -> Impairments {
    Impairments {
        delay_ns: one_way_ns,
        jitter_ns,
        ..Impairments::default()
    }
}

/// Why a profile or an override was not taken; names the key, the value and what was
/// expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {name:?}: must be one of {known}")]
    Unknown { name: String, known: String },
    #[error("--set {0:?}: must be KEY=VALUE, e.g. forward.delay=3ms")]
    NotAssignment(String),
    #[error("--set {key} = {value:?}: {expected}")]
    Value {
        key: String,
        value: String,
        expected: Expected,
    },
}

impl LinkProfile {
    /// A named profile.
    pub fn named(name: &str) -> Result<LinkProfile, ProfileError> {
        let both = |i: Impairments| (i.clone(), i);
        let (forward, reverse) = match name {
            "clean" => both(Impairments::default()),
            "eastus-ashburn" => both(interconnect(800 * US, 20 * US)),
            "uksouth-london" => both(interconnect(600 * US, 15 * US)),
            "canadacentral-toronto" => both(interconnect(700 * US, 20 * US)),
            "westeurope-amsterdam" => both(interconnect(900 * US, 25 * US)),
            "lossy" => both(Impairments {
                loss: 0.01,
                ..interconnect(800 * US, 20 * US)
            }),
            "bursty" => both(Impairments {
                burst: Some(GilbertElliott {
                    p: 0.002,
                    r: 0.2,
                    loss_good: 0.0,
                    loss_bad: 0.5,
                }),
                ..interconnect(800 * US, 20 * US)
            }),
            "bufferbloat" => both(Impairments {
                rate_bps: 50_000_000,
                queue_limit_ns: 250 * MS,
                ..interconnect(800 * US, 20 * US)
            }),
            other => {
                return Err(ProfileError::Unknown {
                    name: other.to_owned(),
                    known: PROFILES.join(", "),
                })
            }
        };
        Ok(LinkProfile {
            name: name.to_owned(),
            forward,
            reverse,
            mtu: 1400,
            ecmp: Vec::new(),
        })
    }

    /// Each path's impairments (forward, reverse): one, or two with `ecmp.*` keys.
    pub fn paths(&self) -> Vec<(Impairments, Impairments)> {
        let first = (self.forward.clone(), self.reverse.clone());
        if self.ecmp.is_empty() {
            return vec![first];
        }
        let mut second = self.clone();
        for (key, value) in &self.ecmp {
            // Each was checked when it was set.
            let _ = second.set_path(key, value);
        }
        vec![first, (second.forward, second.reverse)]
    }

    /// Applies one `KEY=VALUE` override; the error names the key, the value and what was
    /// expected.
    pub fn set(&mut self, assignment: &str) -> Result<(), ProfileError> {
        let (key, value) = assignment
            .split_once('=')
            .ok_or_else(|| ProfileError::NotAssignment(assignment.to_owned()))?;
        let (key, value) = (key.trim(), value.trim());
        let err = |expected: &str| ProfileError::Value {
            key: key.to_owned(),
            value: value.to_owned(),
            expected: Expected(expected.to_owned()),
        };
        if let Some(rest) = key.strip_prefix("ecmp.") {
            // Checked on a copy: a bad value leaves the profile as it was.
            self.clone()
                .set_path(rest, value)
                .map_err(|e| ProfileError::Value {
                    key: key.to_owned(),
                    value: value.to_owned(),
                    expected: e,
                })?;
            self.ecmp.push((rest.to_owned(), value.to_owned()));
            self.name = format!("{}+", self.name.trim_end_matches('+'));
            return Ok(());
        }
        if key == "mtu" {
            let mtu: usize = value
                .parse()
                .map_err(|_| err("must be a whole number of bytes"))?;
            if !(576..=9000).contains(&mtu) {
                return Err(err("must be 576 to 9000"));
            }
            self.mtu = mtu;
            return Ok(());
        }
        self.set_path(key, value).map_err(|e| err(&e.0))?;
        self.name = format!("{}+", self.name.trim_end_matches('+'));
        Ok(())
    }

    /// Sets one impairment (`delay`, `forward.delay`, ...) of the first path.
    fn set_path(&mut self, key: &str, value: &str) -> Result<(), Expected> {
        let (dirs, field): (Vec<&mut Impairments>, &str) = match key.split_once('.') {
            Some(("forward", f)) => (vec![&mut self.forward], f),
            Some(("reverse", f)) => (vec![&mut self.reverse], f),
            Some(_) => {
                return Err(Expected(
                    "prefix must be forward., reverse. or ecmp.".into(),
                ))
            }
            None => (vec![&mut self.forward, &mut self.reverse], key),
        };
        for d in dirs {
            set_field(d, field, value)?;
        }
        Ok(())
    }
}

fn set_field(d: &mut Impairments, field: &str, value: &str) -> Result<(), Expected> {
    fn ge(d: &mut Impairments) -> &mut GilbertElliott {
        d.burst.get_or_insert(GilbertElliott {
            p: 0.0,
            r: 1.0,
            loss_good: 0.0,
            loss_bad: 1.0,
        })
    }
    match field {
        "delay" => d.delay_ns = duration(value)?,
        "jitter" => d.jitter_ns = duration(value)?,
        "reorder_gap" => d.reorder_gap_ns = duration(value)?,
        "queue" => d.queue_limit_ns = duration(value)?,
        "jitter_distribution" => {
            d.jitter_distribution = match value {
                "uniform" => JitterDistribution::Uniform,
                "normal" => JitterDistribution::Normal,
                _ => return Err(Expected("must be uniform or normal".into())),
            }
        }
        "jitter_reorders" => {
            d.jitter_reorders = value
                .parse()
                .map_err(|_| Expected("must be true or false".into()))?
        }
        "loss" => d.loss = probability(value)?,
        "duplicate" => d.duplicate = probability(value)?,
        "reorder" => d.reorder = probability(value)?,
        "burst_p" => ge(d).p = probability(value)?,
        "burst_r" => ge(d).r = probability(value)?,
        "burst_loss_good" => ge(d).loss_good = probability(value)?,
        "burst_loss_bad" => ge(d).loss_bad = probability(value)?,
        "rate" => d.rate_bps = rate(value)?,
        other => {
            return Err(Expected(format!(
                "unknown key {other:?}: must be one of mtu, delay, jitter, jitter_distribution, jitter_reorders, loss, burst_p, burst_r, burst_loss_good, burst_loss_bad, duplicate, reorder, reorder_gap, rate, queue"
            )))
        }
    }
    Ok(())
}

fn duration(v: &str) -> Result<u64, Expected> {
    xcbench_snapshot::config_text::parse_duration(v)
        .filter(|d| *d <= std::time::Duration::from_secs(60))
        .map(|d| d.as_nanos() as u64)
        .ok_or_else(|| Expected("must be a duration up to 60s such as 250us, 3ms, 1s".into()))
}

fn probability(v: &str) -> Result<f64, Expected> {
    let p = match v.strip_suffix('%') {
        Some(pct) => pct.parse::<f64>().map(|x| x / 100.0),
        None => v.parse::<f64>(),
    }
    .map_err(|_| Expected("must be a probability such as 1% or 0.01".into()))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(Expected("must be between 0% and 100%".into()))
    }
}

fn rate(v: &str) -> Result<u64, Expected> {
    let lower = v.to_ascii_lowercase();
    let (num, scale) = if let Some(n) = lower.strip_suffix("gbit") {
        (n, 1e9)
    } else if let Some(n) = lower.strip_suffix("mbit") {
        (n, 1e6)
    } else if let Some(n) = lower.strip_suffix("kbit") {
        (n, 1e3)
    } else if let Some(n) = lower.strip_suffix("bit") {
        (n, 1.0)
    } else {
        (lower.as_str(), 1.0)
    };
    num.parse::<f64>()
        .ok()
        .filter(|x| *x >= 0.0)
        .map(|x| (x * scale) as u64)
        .ok_or_else(|| Expected("must be a rate such as 200mbit, 1gbit or 0 (unlimited)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_and_overrides() {
        for name in PROFILES {
            let p = LinkProfile::named(name).unwrap();
            assert_eq!(p.mtu, 1400);
        }
        let mut p = LinkProfile::named("eastus-ashburn").unwrap();
        assert_eq!(p.forward.delay_ns, 800_000);
        p.set("forward.delay=3ms").unwrap();
        p.set("reverse.delay=1ms").unwrap();
        p.set("loss=1%").unwrap();
        p.set("rate=200mbit").unwrap();
        p.set("burst_r=0.3").unwrap();
        assert_eq!(
            (p.forward.delay_ns, p.reverse.delay_ns),
            (3_000_000, 1_000_000)
        );
        assert_eq!((p.forward.loss, p.reverse.rate_bps), (0.01, 200_000_000));
        assert_eq!(p.forward.burst.unwrap().r, 0.3);
        assert_eq!(p.name, "eastus-ashburn+");
        assert_eq!(
            p.set("forward.delay=soon").unwrap_err().to_string(),
            "--set forward.delay = \"soon\": must be a duration up to 60s such as 250us, 3ms, 1s"
        );
        assert_eq!(
            p.set("loss=150%").unwrap_err().to_string(),
            "--set loss = \"150%\": must be between 0% and 100%"
        );
        assert!(p
            .set("sideways.delay=1ms")
            .unwrap_err()
            .to_string()
            .contains("prefix must be"));
        assert!(matches!(p.set("x"), Err(ProfileError::NotAssignment(_))));
        assert!(p
            .set("colour=red")
            .unwrap_err()
            .to_string()
            .contains("unknown key \"colour\""));
        // A second path: the first one with ecmp.* on top, whenever they were set.
        assert_eq!(p.paths().len(), 1);
        p.set("ecmp.delay=4ms").unwrap();
        p.set("ecmp.reverse.loss=10%").unwrap();
        p.set("jitter=0s").unwrap();
        let paths = p.paths();
        assert_eq!(paths.len(), 2);
        assert_eq!(
            (paths[0].0.delay_ns, paths[1].0.delay_ns),
            (3_000_000, 4_000_000)
        );
        assert_eq!((paths[1].0.loss, paths[1].1.loss), (0.01, 0.1));
        assert_eq!((paths[0].0.jitter_ns, paths[1].0.jitter_ns), (0, 0));
        assert_eq!(
            p.set("ecmp.delay=later").unwrap_err().to_string(),
            "--set ecmp.delay = \"later\": must be a duration up to 60s such as 250us, 3ms, 1s"
        );
        assert!(p.set("ecmp.mtu=1500").is_err(), "one MTU for the link");
        assert_eq!(p.ecmp.len(), 2);
        assert!(LinkProfile::named("mars")
            .unwrap_err()
            .to_string()
            .contains("must be one of clean, eastus-ashburn"));
    }
}
