//! `[remote_write]` of collector.toml: the receiver, its credentials and the queue's bounds,
//! into [`RemoteWriteConfig`]; each error names its field.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use crate::remote_write::{Histograms, RemoteWriteConfig};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoteWrite {
    pub(super) url: Option<String>,
    pub(super) max_samples_per_send: Option<i64>,
    pub(super) org_id: Option<String>,
    pub(super) basic_auth: Option<RawBasicAuth>,
    pub(super) bearer_token_file: Option<String>,
    pub(super) ca: Option<String>,
    pub(super) retry_on_429: Option<bool>,
    pub(super) max_queue_mb: Option<i64>,
    pub(super) timeout: Option<String>,
    pub(super) external_labels: Option<std::collections::BTreeMap<String, String>>,
    pub(super) histograms: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBasicAuth {
    pub(super) username: String,
    pub(super) password_file: String,
}

/// `[remote_write]` into typed values; `err` builds the error naming the field.
pub(super) fn parse_remote_write(
    err: &dyn Fn(&str, String, &str) -> ConfigError,
    r: RawRemoteWrite,
) -> Result<RemoteWriteConfig, ConfigError> {
    let url = r.url.ok_or_else(|| {
        err(
            "remote_write.url",
            "(missing)".into(),
            "must be the receiver's write endpoint, e.g. \"http://prometheus:9090/api/v1/write\"",
        )
    })?;
    let https = url.starts_with("https://");
    if !(https || url.starts_with("http://")) || url.len() <= "https://".len() {
        return Err(err(
            "remote_write.url",
            format!("{url:?}"),
            "must be an http:// or https:// URL, e.g. \"http://prometheus:9090/api/v1/write\"",
        ));
    }
    if https && r.ca.is_none() {
        return Err(err(
            "remote_write.url",
            format!("{url:?}"),
            "is https://: set remote_write.ca, the PEM CA certificates the receiver is checked against",
        ));
    }
    let mut c = RemoteWriteConfig::new(&url);
    if let Some(n) = r.max_samples_per_send {
        if !(1..=100_000).contains(&n) {
            return Err(err(
                "remote_write.max_samples_per_send",
                n.to_string(),
                "must be 1 to 100000",
            ));
        }
        c.max_samples_per_send = n as usize;
    }
    if let Some(n) = r.max_queue_mb {
        if !(1..=1_048_576).contains(&n) {
            return Err(err(
                "remote_write.max_queue_mb",
                n.to_string(),
                "must be 1 to 1048576 (MiB)",
            ));
        }
        c.max_queue_bytes = (n as u64) << 20;
    }
    if let Some(t) = r.timeout {
        c.timeout = xcbench_snapshot::config_text::parse_duration(&t)
            .filter(|d| *d >= Duration::from_secs(1) && *d <= Duration::from_secs(600))
            .ok_or_else(|| {
                err(
                    "remote_write.timeout",
                    format!("{t:?}"),
                    "must be a duration from 1s to 10m, e.g. \"30s\"",
                )
            })?;
    }
    let path = |field: &str, text: String| match text.is_empty() {
        true => Err(err(field, "\"\"".into(), "must be a file path")),
        false => Ok(PathBuf::from(text)),
    };
    if let Some(org) = r.org_id {
        if org.is_empty() || !org.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(err(
                "remote_write.org_id",
                format!("{org:?}"),
                "must be a tenant id of visible ASCII characters",
            ));
        }
        c.org_id = Some(org);
    }
    if let Some(b) = r.basic_auth {
        c.basic_auth = Some((
            b.username,
            path("remote_write.basic_auth.password_file", b.password_file)?,
        ));
    }
    if let Some(t) = r.bearer_token_file {
        if c.basic_auth.is_some() {
            return Err(err(
                "remote_write.bearer_token_file",
                format!("{t:?}"),
                "must not be set with basic_auth: a request carries one Authorization",
            ));
        }
        c.bearer_token_file = Some(path("remote_write.bearer_token_file", t)?);
    }
    c.ca = r.ca.map(|ca| path("remote_write.ca", ca)).transpose()?;
    c.retry_on_429 = r.retry_on_429.unwrap_or(false);
    for (name, value) in r.external_labels.unwrap_or_default() {
        let field = format!("remote_write.external_labels.{name}");
        let name_ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with("__");
        if !name_ok {
            return Err(err(
                &field,
                format!("{value:?}"),
                "must be named like a Prometheus label: a letter or _, then letters, digits or _, not starting with __",
            ));
        }
        if value.is_empty() {
            return Err(err(
                &field,
                "\"\"".into(),
                "must not be empty (an empty label is no label)",
            ));
        }
        xcbench_snapshot::label::check_label_value(&value)
            .map_err(|e| err(&field, format!("{value:?}"), e))?;
        c.external_labels.push((name, value));
    }
    if let Some(h) = r.histograms {
        c.histograms = match h.as_str() {
            "classic" => Histograms::Classic,
            "native" => Histograms::Native,
            _ => {
                return Err(err(
                    "remote_write.histograms",
                    format!("{h:?}"),
                    "must be \"classic\" (_bucket, _sum and _count: every receiver) or \"native\" (one native histogram each: Prometheus 2.40+ with native histograms enabled, Mimir)",
                ))
            }
        };
    }
    Ok(c)
}
