//! HTTPS requests to a collector under test, through the same rustls configuration agents
//! and the gate use (`xcbench_agent::tls::https_client`): the collector pinned, a client
//! key pair presented or not.

use std::net::SocketAddr;
use std::time::Duration;

use xcbench_agent::tls::{Fingerprint, TlsIdentity};

/// `method path` with `body` over HTTPS to `addr`, the collector known by `pin`, as
/// `client` (or with no client certificate): the status and the body, or the error's text
/// when no HTTP answer came.
pub(crate) fn https(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    pin: Fingerprint,
    client: Option<&TlsIdentity>,
) -> Result<(u16, String), String> {
    let config = xcbench_agent::tls::https_client(client, Some(pin), None).unwrap();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let url = format!("https://{addr}{path}");
    let body = body.to_vec();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let r = http
                .request(method, url)
                .body(body)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let status = r.status().as_u16();
            Ok((status, r.text().await.map_err(|e| e.to_string())?))
        })
}
