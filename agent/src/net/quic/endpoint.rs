//! The one accept loop of an agent's QUIC port: at most [`MAX_CONNECTIONS_PER_SOURCE`]
//! connections per source address, handshakes that do not finish in [`HANDSHAKE_TIMEOUT`]
//! dropped, then each connection handed on by the application protocol it negotiated:
//! probes (`xcbench-probe/1`) to the [`responder`](super::responder), throughput-test
//! control (`xcbench-bench/1`) to the throughput server. Neither knows the other.
//!
//! Requests are answered before the handshake completes (0.5-RTT) only on resumed
//! connections, whose client certificate is already known from the ticket; anyone else
//! first completes the handshake, where its certificate is checked.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{Connection, Endpoint};
use tokio::sync::watch;
use xcbench_snapshot::ResponderCount;

use super::{alpn, responder, CLOSE_DONE, CLOSE_MALFORMED};
use crate::net::limits::PerSource;
use crate::net::lock;
use crate::net::throughput::server::Server;
use crate::tls::ALPN_THROUGHPUT;

pub const MAX_CONNECTIONS_PER_SOURCE: usize = 64;
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What an agent's QUIC port serves.
#[derive(Clone)]
pub struct Services {
    /// The probe responder's counters.
    pub probes: Arc<Mutex<ResponderCount>>,
    /// Throughput tests, when this agent answers them.
    pub throughput: Option<Arc<Server>>,
}

/// Accepts connections until `stop` changes.
pub async fn serve(endpoint: Endpoint, services: Services, mut stop: watch::Receiver<bool>) {
    let per_source = PerSource::new(MAX_CONNECTIONS_PER_SOURCE);
    loop {
        let incoming = tokio::select! {
            _ = stop.changed() => break,
            i = endpoint.accept() => match i {
                Some(i) => i,
                None => break,
            },
        };
        let from = incoming.remote_address();
        let Some(slot) = per_source.try_take(from.ip()) else {
            lock(&services.probes).refused += 1;
            tracing::warn!(%from, "quic connection refused: per-source limit reached");
            incoming.refuse();
            continue;
        };
        let (services, stop) = (services.clone(), stop.clone());
        tokio::spawn(async move {
            match incoming.accept() {
                Ok(connecting) => {
                    if let Some(conn) = handshake(connecting, from, &services.probes).await {
                        dispatch(conn, from, &services, stop).await;
                    }
                }
                Err(e) => refuse(&services.probes, from, &e.to_string()),
            }
            drop(slot);
        });
    }
    endpoint.close(CLOSE_DONE, b"reflector stopping");
}

/// The connection once the client is known: at once for a resumed one, after the handshake
/// for anyone else; `None` (counted, logged) when it fails or times out.
async fn handshake(
    connecting: quinn::Connecting,
    from: SocketAddr,
    counters: &Mutex<ResponderCount>,
) -> Option<Connection> {
    let (conn, established) = match connecting.into_0rtt() {
        Ok(pair) => pair,
        Err(connecting) => {
            return match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
                Ok(Ok(conn)) => Some(conn),
                Ok(Err(e)) => {
                    refuse(counters, from, &e.to_string());
                    None
                }
                Err(_) => {
                    refuse(counters, from, "handshake timed out");
                    None
                }
            }
        }
    };
    if conn.peer_identity().is_none() {
        // Resolves when the handshake completes or fails (its value is meaningless on a
        // server); a verified client certificate is what tells the two apart.
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, established).await {
            Ok(_) if conn.peer_identity().is_some() => {}
            Ok(_) => {
                let why = conn
                    .close_reason()
                    .map_or_else(|| "no client certificate".to_owned(), |r| r.to_string());
                refuse(counters, from, &why);
                return None;
            }
            Err(_) => {
                conn.close(CLOSE_DONE, b"handshake timed out");
                refuse(counters, from, "handshake timed out");
                return None;
            }
        }
    }
    Some(conn)
}

/// Hands the connection to the service its ALPN names.
async fn dispatch(
    conn: Connection,
    from: SocketAddr,
    services: &Services,
    mut stop: watch::Receiver<bool>,
) {
    if alpn(&conn).as_deref() != Some(ALPN_THROUGHPUT) {
        return responder::serve_connection(conn, from, &services.probes, &mut stop).await;
    }
    match &services.throughput {
        Some(server) => server.clone().serve_control(conn).await,
        None => conn.close(CLOSE_MALFORMED, b"no throughput tests on this agent"),
    }
}

fn refuse(counters: &Mutex<ResponderCount>, from: SocketAddr, why: &str) {
    lock(counters).refused += 1;
    tracing::warn!(%from, reason = why, "quic connection refused");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::quic::{client_config, exchange, server_endpoint};
    use crate::net::settle;
    use crate::tls::{client_crypto, server_crypto, KeySource, TlsIdentity};
    use crate::wire::rr::{Frame, FrameType, MAX_FRAME_LEN};
    use std::collections::HashSet;

    struct Responder {
        addr: SocketAddr,
        counters: Arc<Mutex<ResponderCount>>,
        _stop: watch::Sender<bool>,
    }

    fn services(counters: &Arc<Mutex<ResponderCount>>) -> Services {
        Services {
            probes: counters.clone(),
            throughput: None,
        }
    }

    fn identity(name: &str) -> TlsIdentity {
        TlsIdentity::load(&KeySource::Ephemeral, name).unwrap()
    }

    fn responder(server: &TlsIdentity, allowed: &[&TlsIdentity]) -> Responder {
        let allowed: HashSet<_> = allowed.iter().map(|i| i.fingerprint).collect();
        let crypto = server_crypto(server, allowed, None).unwrap();
        let endpoint = server_endpoint("127.0.0.1:0".parse().unwrap(), crypto).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let counters: Arc<Mutex<ResponderCount>> = Arc::default();
        let (stop, rx) = watch::channel(false);
        tokio::spawn(serve(endpoint, services(&counters), rx));
        Responder {
            addr,
            counters,
            _stop: stop,
        }
    }

    async fn connect(
        client: &TlsIdentity,
        server: &TlsIdentity,
        addr: SocketAddr,
    ) -> Result<Connection, quinn::ConnectionError> {
        let endpoint = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let crypto = client_crypto(client, Some(server.fingerprint), None, false).unwrap();
        endpoint
            .connect_with(client_config(crypto, false), addr, "xcbench")
            .unwrap()
            .await
    }

    fn request(seq: u32, len: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        Frame {
            kind: FrameType::Request,
            seq,
            t1: 42,
            t2: 0,
            t3: 0,
            len,
        }
        .encode(&mut buf);
        buf
    }

    #[tokio::test]
    async fn streams_and_datagrams_are_answered_with_equal_lengths() {
        let (server, client) = (identity("oci-1"), identity("az-1"));
        let r = responder(&server, &[&client]);
        let conn = connect(&client, &server, r.addr).await.unwrap();
        for (seq, len) in [(0, 34), (1, 300), (2, MAX_FRAME_LEN)] {
            let data = exchange(&conn, &request(seq, len)).await.unwrap();
            let f = Frame::decode(&data).unwrap();
            assert_eq!(
                (f.kind, f.seq, f.t1, data.len()),
                (FrameType::Response, seq, 42, len)
            );
            assert!(f.t3 >= f.t2 && f.t2 > 0);
        }
        conn.send_datagram(request(7, 500).into()).unwrap();
        let data = conn.read_datagram().await.unwrap();
        assert_eq!(data.len(), 500);
        assert_eq!(Frame::decode(&data).unwrap().seq, 7);
        settle(|| lock(&r.counters).reflected == 4).await;
        assert_eq!(lock(&r.counters).reflected, 4);
    }

    #[tokio::test]
    async fn garbage_closes_only_that_connection() {
        let (server, client) = (identity("oci-1"), identity("az-1"));
        let r = responder(&server, &[&client]);
        let good = connect(&client, &server, r.addr).await.unwrap();
        for garbage in [
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            vec![0u8; MAX_FRAME_LEN + 1],
            {
                let mut response = request(1, 64);
                response[3] = 2;
                response
            },
        ] {
            let bad = connect(&client, &server, r.addr).await.unwrap();
            // The stream may fail either way once the responder closes the connection.
            let _ = exchange(&bad, &garbage).await;
            let reason = tokio::time::timeout(Duration::from_secs(5), bad.closed())
                .await
                .expect("the responder closes a connection that sends garbage");
            assert!(
                matches!(&reason, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == CLOSE_MALFORMED),
                "{reason}"
            );
        }
        // A datagram that is not a request closes its connection too.
        let bad = connect(&client, &server, r.addr).await.unwrap();
        bad.send_datagram(b"\x58\x42\x01\x01short".to_vec().into())
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), bad.closed())
            .await
            .unwrap();
        assert_eq!(lock(&r.counters).malformed, 4);
        // The well-behaved connection never noticed.
        let data = exchange(&good, &request(9, 44)).await.unwrap();
        assert_eq!(Frame::decode(&data).unwrap().seq, 9);
    }

    #[tokio::test]
    async fn an_unknown_client_is_refused_and_a_wrong_server_is_not_trusted() {
        let (server, client, stranger) = (identity("oci-1"), identity("az-1"), identity("x"));
        let r = responder(&server, &[&client]);
        let refused = connect(&stranger, &server, r.addr).await;
        // The client may complete its side before the server's refusal arrives.
        if let Ok(conn) = refused {
            let e = exchange(&conn, &request(0, 44)).await;
            assert!(e.is_err(), "a stranger got an answer");
        }
        settle(|| lock(&r.counters).refused == 1).await;
        assert_eq!(lock(&r.counters).refused, 1);
        assert_eq!(lock(&r.counters).reflected, 0);
        // The client pins the server: another certificate at that address is rejected.
        let impostor = responder(&stranger, &[&client]);
        assert!(connect(&client, &server, impostor.addr).await.is_err());
    }

    /// A CA-issued key pair in `dir`, named `name`, usable as server and client.
    fn issued(
        dir: &std::path::Path,
        ca: &rcgen::CertifiedIssuer<'_, rcgen::KeyPair>,
        name: &str,
    ) -> TlsIdentity {
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, ca).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        TlsIdentity::load(&KeySource::Files { cert: c, key: k }, name).unwrap()
    }

    #[tokio::test]
    async fn a_ca_vouches_for_peers_that_nobody_pinned() {
        let dir = std::env::temp_dir().join(format!("xcbench-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
            .unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let roots = crate::tls::load_ca(&dir.join("ca.pem")).unwrap();
        let (server, client, other) = (
            issued(&dir, &ca, "oci-1"),
            issued(&dir, &ca, "az-1"),
            issued(&dir, &ca, "oci-2"),
        );
        let serve_with_ca = |id: &TlsIdentity| {
            let crypto = server_crypto(id, HashSet::new(), Some(roots.clone())).unwrap();
            let endpoint = server_endpoint("127.0.0.1:0".parse().unwrap(), crypto).unwrap();
            let addr = endpoint.local_addr().unwrap();
            let counters: Arc<Mutex<ResponderCount>> = Arc::default();
            let (stop, rx) = watch::channel(false);
            tokio::spawn(serve(endpoint, services(&counters), rx));
            (addr, counters, stop)
        };
        let connect_as = |id: &TlsIdentity, addr, name: &str| {
            let endpoint = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
            let crypto = client_crypto(id, None, Some(roots.clone()), false).unwrap();
            let connecting = endpoint
                .connect_with(client_config(crypto, false), addr, name)
                .unwrap();
            async move { (connecting.await, endpoint) }
        };
        let (addr, counters, _stop) = serve_with_ca(&server);
        let (conn, _e) = connect_as(&client, addr, "oci-1").await;
        let data = exchange(&conn.unwrap(), &request(3, 44)).await.unwrap();
        assert_eq!(Frame::decode(&data).unwrap().seq, 3);
        // A self-signed client the CA never saw is refused.
        let stranger = identity("az-9");
        let (conn, _e) = connect_as(&stranger, addr, "oci-1").await;
        if let Ok(conn) = conn {
            assert!(exchange(&conn, &request(4, 44)).await.is_err());
        }
        settle(|| lock(&counters).refused == 1).await;
        assert_eq!(lock(&counters).refused, 1);
        // A server the CA issued for another agent is not the peer asked for.
        let (addr2, _c2, _stop2) = serve_with_ca(&other);
        assert!(connect_as(&client, addr2, "oci-1").await.0.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn connections_per_source_are_capped() {
        let (server, client) = (identity("oci-1"), identity("az-1"));
        let r = responder(&server, &[&client]);
        let mut open = Vec::new();
        for _ in 0..MAX_CONNECTIONS_PER_SOURCE {
            let conn = connect(&client, &server, r.addr).await.unwrap();
            // Answered, so the responder holds the connection.
            exchange(&conn, &request(0, 44)).await.unwrap();
            open.push(conn);
        }
        assert!(
            connect(&client, &server, r.addr).await.is_err(),
            "one too many"
        );
        assert_eq!(lock(&r.counters).refused, 1);
        // Closing one frees its slot.
        open.pop().unwrap().close(CLOSE_DONE, b"done");
        let mut again = None;
        for _ in 0..100 {
            if let Ok(c) = connect(&client, &server, r.addr).await {
                again = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        exchange(&again.expect("a slot again"), &request(1, 44))
            .await
            .unwrap();
    }
}
