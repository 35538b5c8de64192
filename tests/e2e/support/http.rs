//! A blocking HTTP/1.1 client for tests on loopback or inside a namespace: enough for the
//! collector's API and Prometheus' (status and body; chunked bodies joined).

use std::net::SocketAddr;
use std::time::Duration;

/// Blocking HTTP GET on loopback (tests only): status and body.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http(addr, "GET", path, &[])
}

pub(crate) fn http_post(addr: SocketAddr, path: &str, body: &[u8]) -> Option<(u16, String)> {
    http(addr, "POST", path, body)
}

fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Option<(u16, String)> {
    http_with(addr, method, path, &[], body).map(|(status, _, body)| (status, body))
}

/// Blocking HTTP GET with more request headers: status, response headers (raw), body.
pub(crate) fn http_get_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String, String)> {
    http_with(addr, "GET", path, headers, &[])
}

fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let extra: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = text.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((status, head.to_owned(), body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
