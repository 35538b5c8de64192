//! `cloud = "auto"` at start: asks Azure IMDS and OCI IMDSv2 at once for this host's
//! instance metadata, with short timeouts, and resolves the agent's labels from whichever
//! answers ([`crate::config::metadata`] reads the documents). The client is the one HTTP
//! client ([`crate::http::client`]): both services are reached directly, never through a
//! proxy, and an answer is read only up to [`Lookup::max_bytes`].

use std::net::IpAddr;
use std::time::Duration;

use crate::config::metadata::{
    parse_azure, parse_oci_instance, parse_oci_vnics, DocumentError, Endpoint, InstanceMetadata,
    MetadataUrl,
};
use crate::config::{defaults, AgentConfig};

/// How long the metadata services may take, and how much they may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup {
    pub connect_timeout: Duration,
    /// The whole exchange, connection included.
    pub timeout: Duration,
    pub max_bytes: usize,
}

impl Default for Lookup {
    fn default() -> Lookup {
        Lookup {
            connect_timeout: defaults::METADATA_CONNECT_TIMEOUT,
            timeout: defaults::METADATA_TIMEOUT,
            max_bytes: 1 << 20,
        }
    }
}

/// Why one metadata request got no document.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("connect timeout after {0:?}")]
    ConnectTimeout(Duration),
    /// Refused or unreachable.
    #[error("connect: {}", chain(.0))]
    Connect(#[source] reqwest::Error),
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// Any other failure of the exchange (a malformed answer among them).
    #[error("{}", chain(.0))]
    Http(#[source] reqwest::Error),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("answer longer than {0} bytes")]
    TooLarge(usize),
}

/// An error with its sources, `: `-joined: reqwest's own message ("error sending request")
/// says little without them, and the metadata error is printed as one line.
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Why `cloud = "auto"` could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Neither service served its document: not on Azure or OCI, or the service is down.
    #[error(
        "agent.cloud = \"auto\": no instance metadata: {}: {azure}; {}: {oci}; set cloud, region (and zone) by hand",
        Endpoint::AzureInstance.describe(base),
        Endpoint::OciInstance.describe(base)
    )]
    Unavailable {
        base: MetadataUrl,
        azure: FetchError,
        oci: FetchError,
    },
    /// A service served a document this agent cannot read.
    #[error("agent.cloud = \"auto\": {}: {problem}", endpoint.describe(base))]
    Document {
        base: MetadataUrl,
        endpoint: Endpoint,
        problem: DocumentError,
    },
}

/// `config` with `cloud = "auto"` resolved from instance metadata (the file's region and zone
/// win), logged with what else the metadata says; without `auto`, `config` as it is.
pub async fn resolve(config: AgentConfig, lookup: &Lookup) -> Result<AgentConfig, MetadataError> {
    let Some(auto) = &config.auto else {
        return Ok(config);
    };
    let found = read(&auto.url, lookup).await?;
    let config = config.with_metadata(&found);
    let i = &config.identity;
    tracing::info!(
        cloud = %i.cloud,
        region = %i.region,
        zone = %i.zone,
        instance = %found.instance,
        "labels from instance metadata (region and zone set in the file win)"
    );
    Ok(config)
}

/// This host's instance metadata: Azure and OCI are asked at once; Azure's document is taken
/// if both answer.
pub async fn read(base: &MetadataUrl, lookup: &Lookup) -> Result<InstanceMetadata, MetadataError> {
    let client = crate::http::client(lookup.connect_timeout, lookup.timeout, None);
    let (azure, oci) = tokio::join!(
        get(&client, base, Endpoint::AzureInstance, lookup),
        get(&client, base, Endpoint::OciInstance, lookup)
    );
    let document = |endpoint: Endpoint| {
        move |problem| MetadataError::Document {
            base: base.clone(),
            endpoint,
            problem,
        }
    };
    match (azure, oci) {
        (Ok(body), _) => parse_azure(&body).map_err(document(Endpoint::AzureInstance)),
        (Err(_), Ok(body)) => {
            let mut found = parse_oci_instance(&body).map_err(document(Endpoint::OciInstance))?;
            found.instance.private_ip = oci_private_ip(&client, base, lookup)
                .await
                .map_err(document(Endpoint::OciVnics))?;
            Ok(found)
        }
        (Err(azure), Err(oci)) => Err(MetadataError::Unavailable {
            base: base.clone(),
            azure,
            oci,
        }),
    }
}

/// The first VNIC's private address. Some shapes serve no VNICs document: that is logged,
/// not fatal (the address is information only); a malformed one is an error.
async fn oci_private_ip(
    client: &reqwest::Client,
    base: &MetadataUrl,
    lookup: &Lookup,
) -> Result<Option<IpAddr>, DocumentError> {
    match get(client, base, Endpoint::OciVnics, lookup).await {
        Ok(body) => parse_oci_vnics(&body),
        Err(e) => {
            let at = Endpoint::OciVnics.describe(base);
            tracing::warn!(error = %e, "{at}: no private address from instance metadata");
            Ok(None)
        }
    }
}

/// GET one document: its body when the service answers 200.
async fn get(
    client: &reqwest::Client,
    base: &MetadataUrl,
    endpoint: Endpoint,
    lookup: &Lookup,
) -> Result<Vec<u8>, FetchError> {
    let (name, value) = endpoint.header();
    let url = format!("{base}{}", endpoint.path_and_query());
    let failed = |e: reqwest::Error| match (e.is_timeout(), e.is_connect()) {
        (true, true) => FetchError::ConnectTimeout(lookup.connect_timeout),
        (true, false) => FetchError::Timeout(lookup.timeout),
        (false, true) => FetchError::Connect(e),
        (false, false) => FetchError::Http(e),
    };
    let response = client
        .get(url)
        .header(name, value)
        .header("Accept", "application/json")
        .header("User-Agent", "xcbench")
        .send()
        .await
        .map_err(failed)?;
    let status = response.status().as_u16();
    let body = crate::http::read_bounded(response, lookup.max_bytes)
        .await
        .map_err(|e| match e {
            crate::http::BodyError::TooLarge(n) => FetchError::TooLarge(n),
            crate::http::BodyError::Http(e) => failed(e),
        })?;
    match status {
        200 => Ok(body),
        status => Err(FetchError::Status(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const QUICK: Lookup = Lookup {
        connect_timeout: Duration::from_millis(300),
        timeout: Duration::from_millis(500),
        max_bytes: 1 << 16,
    };

    /// A loopback metadata service answering `respond(request head)`; `None` holds the
    /// connection open without answering.
    async fn serve(
        respond: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> MetadataUrl {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url =
            MetadataUrl::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let respond = Arc::new(respond);
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let respond = respond.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut b = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut b).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&b[..n]),
                        }
                    }
                    match respond(&String::from_utf8_lossy(&head)) {
                        Some(answer) => {
                            let _ = s.write_all(answer.as_bytes()).await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        url
    }

    fn answer(status: &str, body: &str) -> Option<String> {
        Some(format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    #[tokio::test]
    async fn oci_is_read_with_its_vnics() {
        let url = serve(|req| {
            let path = req.split(' ').nth(1).unwrap_or("");
            // Header names are case-insensitive (HTTP/1.1 clients may send them lowercase).
            let authorized = req
                .to_ascii_lowercase()
                .contains("\r\nauthorization: bearer oracle\r\n");
            match path {
                "/opc/v2/instance/" if authorized => answer(
                    "200 OK",
                    r#"{"canonicalRegionName": "eu-frankfurt-1", "availabilityDomain": "Xyz:EU-FRANKFURT-1-AD-2", "shape": "VM.Standard3.Flex"}"#,
                ),
                "/opc/v2/vnics/" if authorized => answer("200 OK", r#"[{"privateIp": "10.0.0.9"}]"#),
                "/opc/v2/instance/" | "/opc/v2/vnics/" => answer("401 Unauthorized", ""),
                _ => answer("404 Not Found", ""),
            }
        })
        .await;
        let m = read(&url, &QUICK).await.unwrap();
        assert_eq!(m.cloud, xcbench_snapshot::Cloud::Oci);
        assert_eq!(
            (m.region.as_str(), m.zone.as_str()),
            ("eu-frankfurt-1", "EU-FRANKFURT-1-AD-2")
        );
        assert_eq!(m.instance.private_ip, Some("10.0.0.9".parse().unwrap()));
    }

    #[tokio::test]
    async fn a_malformed_document_names_its_endpoint_and_field() {
        // Azure IMDS answers only requests with its header.
        let url = serve(|req| {
            let azure = req.starts_with("GET /metadata/instance?")
                && req.to_ascii_lowercase().contains("\r\nmetadata: true\r\n");
            match azure {
                true => answer("200 OK", r#"{"compute": {}}"#),
                false => answer("404 Not Found", ""),
            }
        })
        .await;
        let e = read(&url, &QUICK).await.unwrap_err().to_string();
        assert_eq!(
            e,
            format!("agent.cloud = \"auto\": Azure IMDS {url}/metadata/instance: compute.location: missing")
        );
    }

    #[tokio::test]
    async fn no_service_is_an_error_naming_both_endpoints_in_time() {
        // A closed port: refused at once.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = MetadataUrl::parse(&format!("http://{}", closed.local_addr().unwrap())).unwrap();
        drop(closed);
        let e = read(&url, &QUICK).await.unwrap_err();
        assert!(
            matches!(
                &e,
                MetadataError::Unavailable {
                    azure: FetchError::Connect(_),
                    oci: FetchError::Connect(_),
                    ..
                }
            ),
            "{e}"
        );
        let text = e.to_string();
        assert!(text.starts_with(&format!("agent.cloud = \"auto\": no instance metadata: Azure IMDS {url}/metadata/instance: connect: ")), "{text}");
        assert!(
            text.contains(&format!("; OCI IMDSv2 {url}/opc/v2/instance/: connect: ")),
            "{text}"
        );
        assert!(
            text.ends_with("; set cloud, region (and zone) by hand"),
            "{text}"
        );

        // A service that never answers: both given up after the timeout, side by side.
        let url = serve(|_| None).await;
        let started = tokio::time::Instant::now();
        let e = read(&url, &QUICK).await.unwrap_err().to_string();
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            e,
            format!("agent.cloud = \"auto\": no instance metadata: Azure IMDS {url}/metadata/instance: no complete answer within 500ms; OCI IMDSv2 {url}/opc/v2/instance/: no complete answer within 500ms; set cloud, region (and zone) by hand")
        );
    }

    /// An answer past `max_bytes` is refused as it arrives, not read whole.
    #[tokio::test]
    async fn an_oversized_answer_is_refused() {
        let url = serve(|_| answer("200 OK", &" ".repeat(200_000))).await;
        let e = read(&url, &QUICK).await.unwrap_err();
        assert!(
            matches!(
                &e,
                MetadataError::Unavailable {
                    azure: FetchError::TooLarge(65_536),
                    oci: FetchError::TooLarge(65_536),
                    ..
                }
            ),
            "{e}"
        );
    }
}
