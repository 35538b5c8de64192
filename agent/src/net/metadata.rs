//! `cloud = "auto"` at start: asks Azure IMDS and OCI IMDSv2 at once for this host's
//! instance metadata, with short timeouts, and resolves the agent's labels from whichever
//! answers ([`crate::config::metadata`] reads the documents). The client is a minimal
//! HTTP/1.1 GET over a plain TCP stream: both services must be reached directly, never
//! through a proxy, and this one cannot be configured to use one.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(io::Error),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
    #[error("answer longer than {0} bytes")]
    TooLarge(usize),
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
    let (azure, oci) = tokio::join!(
        get(base, Endpoint::AzureInstance, lookup),
        get(base, Endpoint::OciInstance, lookup)
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
            found.instance.private_ip = oci_private_ip(base, lookup)
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
    base: &MetadataUrl,
    lookup: &Lookup,
) -> Result<Option<IpAddr>, DocumentError> {
    match get(base, Endpoint::OciVnics, lookup).await {
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
    base: &MetadataUrl,
    endpoint: Endpoint,
    lookup: &Lookup,
) -> Result<Vec<u8>, FetchError> {
    let exchange = async {
        let connect = tokio::net::TcpStream::connect((base.host(), base.port()));
        let mut stream = match tokio::time::timeout(lookup.connect_timeout, connect).await {
            Err(_) => return Err(FetchError::ConnectTimeout(lookup.connect_timeout)),
            Ok(Err(e)) => return Err(FetchError::Connect(e)),
            Ok(Ok(s)) => s,
        };
        stream
            .write_all(&request(base, endpoint))
            .await
            .map_err(FetchError::Io)?;
        read_bounded(&mut stream, lookup.max_bytes).await
    };
    let raw = tokio::time::timeout(lookup.timeout, exchange)
        .await
        .map_err(|_| FetchError::Timeout(lookup.timeout))??;
    match decode_response(&raw)? {
        (200, body) => Ok(body),
        (status, _) => Err(FetchError::Status(status)),
    }
}

async fn read_bounded(
    stream: &mut tokio::net::TcpStream,
    max: usize,
) -> Result<Vec<u8>, FetchError> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await.map_err(FetchError::Io)?;
        if n == 0 {
            return Ok(raw);
        }
        if raw.len() + n > max {
            return Err(FetchError::TooLarge(max));
        }
        raw.extend_from_slice(&chunk[..n]);
    }
}

/// The request: one GET with the service's header; the connection closes after the answer,
/// so the answer ends where the stream does.
fn request(base: &MetadataUrl, endpoint: Endpoint) -> Vec<u8> {
    let (name, value) = endpoint.header();
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n{name}: {value}\r\nAccept: application/json\r\nUser-Agent: xcbench\r\nConnection: close\r\n\r\n",
        endpoint.path_and_query(),
        base.authority()
    )
    .into_bytes()
}

/// A whole HTTP/1.1 response: its status and body (by Content-Length, chunked, or up to the
/// end of the stream).
fn decode_response(raw: &[u8]) -> Result<(u16, Vec<u8>), FetchError> {
    let end = find(raw, b"\r\n\r\n").ok_or(FetchError::Malformed("no end of headers"))?;
    let head =
        std::str::from_utf8(&raw[..end]).map_err(|_| FetchError::Malformed("headers not text"))?;
    let body = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .filter(|l| l.starts_with("HTTP/1."))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(FetchError::Malformed("no status line"))?;
    let (mut chunked, mut length) = (false, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(FetchError::Malformed("header without a colon"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<usize>()
                .map_err(|_| FetchError::Malformed("bad Content-Length"))?;
            length = Some(n);
        }
    }
    let body = match (chunked, length) {
        (true, _) => dechunk(body)?,
        (false, Some(n)) => body
            .get(..n)
            .ok_or(FetchError::Malformed(
                "body shorter than its Content-Length",
            ))?
            .to_vec(),
        (false, None) => body.to_vec(),
    };
    Ok((status, body))
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, FetchError> {
    let bad = FetchError::Malformed;
    let mut body = Vec::new();
    loop {
        let eol = find(rest, b"\r\n").ok_or(bad("chunk size line"))?;
        let size = std::str::from_utf8(&rest[..eol])
            .ok()
            .map(|s| s.split(';').next().unwrap_or("").trim())
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or(bad("chunk size"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        let data = rest.get(..size).ok_or(bad("chunk shorter than its size"))?;
        body.extend_from_slice(data);
        rest = rest
            .get(size..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .ok_or(bad("chunk not ended by CRLF"))?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::net::TcpListener;

    const QUICK: Lookup = Lookup {
        connect_timeout: Duration::from_millis(300),
        timeout: Duration::from_millis(500),
        max_bytes: 1 << 16,
    };

    #[test]
    fn responses_decode() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(decode_response(r).unwrap(), (200, b"{}".to_vec()));
        let r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\": 1\r\n1\r\n}\r\n0\r\n\r\n";
        assert_eq!(decode_response(r).unwrap(), (200, b"{\"a\": 1}".to_vec()));
        let r = b"HTTP/1.0 400 Bad Request\r\n\r\nno";
        assert_eq!(decode_response(r).unwrap(), (400, b"no".to_vec()));
        for (bad, why) in [
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"[..],
                "no end of headers",
            ),
            (b"SSH-2.0\r\n\r\n", "no status line"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}",
                "body shorter than its Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{}",
                "chunk shorter than its size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "chunk size",
            ),
        ] {
            match decode_response(bad) {
                Err(FetchError::Malformed(w)) => assert_eq!(w, why),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn requests_carry_the_services_header() {
        let base = MetadataUrl::default();
        let r = String::from_utf8(request(&base, Endpoint::AzureInstance)).unwrap();
        assert!(r.starts_with("GET /metadata/instance?api-version=2021-02-01 HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\n"), "{r}");
        let r = String::from_utf8(request(&base, Endpoint::OciVnics)).unwrap();
        assert!(r.contains("GET /opc/v2/vnics/ HTTP/1.1\r\n"));
        assert!(r.contains("\r\nAuthorization: Bearer Oracle\r\n"));
    }

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
                    while find(&head, b"\r\n\r\n").is_none() {
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
            let authorized = req.contains("\r\nAuthorization: Bearer Oracle\r\n");
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
        let url = serve(|req| match req.starts_with("GET /metadata/instance?") {
            true => answer("200 OK", r#"{"compute": {}}"#),
            false => answer("404 Not Found", ""),
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
}
