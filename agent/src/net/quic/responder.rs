//! The QUIC probe responder on one connection: one bidirectional stream per request and
//! RFC 9221 DATAGRAM requests, each answered with [`respond`]. Anything that is not probe
//! framing closes that connection with a logged reason and counts as malformed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use quinn::Connection;
use tokio::sync::{mpsc, watch};
use xcbench_snapshot::ResponderCount;

use super::{CLOSE_DONE, CLOSE_MALFORMED, MAX_DATAGRAM_PROBE};
use crate::net::clock::now_unix_ns;
use crate::net::lock;
use crate::probe::rr::{respond, RespondError};
use crate::wire::rr::{Frame, MAX_FRAME_LEN};

/// Why a request could not be answered.
enum Bad {
    /// The connection is gone; nothing to count.
    Gone,
    /// Not probe framing: close the connection.
    Malformed(String),
}

/// The answer to one whole request, stamped right before it goes.
fn answer(data: &[u8], out: &mut Vec<u8>) -> Result<(), RespondError> {
    respond(data, now_unix_ns(), out)?;
    Frame::stamp_send(out, now_unix_ns());
    Ok(())
}

/// Answers probe requests on `conn` until it closes, misbehaves or `stop` changes.
pub async fn serve_connection(
    conn: Connection,
    from: SocketAddr,
    counters: &Mutex<ResponderCount>,
    stop: &mut watch::Receiver<bool>,
) {
    let (bad_tx, mut bad_rx) = mpsc::unbounded_channel::<String>();
    let answered = Arc::new(AtomicU64::new(0));
    let flush = |answered: &AtomicU64| {
        let n = answered.swap(0, Ordering::Relaxed);
        if n > 0 {
            lock(counters).reflected += n;
        }
    };
    let mut out = Vec::with_capacity(MAX_DATAGRAM_PROBE);
    loop {
        tokio::select! {
            _ = stop.changed() => {
                conn.close(CLOSE_DONE, b"reflector stopping");
                break;
            }
            why = bad_rx.recv() => {
                let why = why.unwrap_or_default();
                lock(counters).malformed += 1;
                tracing::warn!(%from, reason = %why, "quic probe connection closed: not probe framing");
                conn.close(CLOSE_MALFORMED, b"not xcbench probe framing");
                break;
            }
            s = conn.accept_bi() => match s {
                Ok((mut send, mut recv)) => {
                    let (bad_tx, answered) = (bad_tx.clone(), answered.clone());
                    tokio::spawn(async move {
                        let result = async {
                            let data = recv.read_to_end(MAX_FRAME_LEN).await.map_err(|e| match e {
                                quinn::ReadToEndError::TooLong => {
                                    Bad::Malformed(format!("stream longer than {MAX_FRAME_LEN} bytes"))
                                }
                                _ => Bad::Gone,
                            })?;
                            let mut out = Vec::with_capacity(data.len());
                            answer(&data, &mut out).map_err(|e| Bad::Malformed(e.to_string()))?;
                            send.write_all(&out).await.map_err(|_| Bad::Gone)?;
                            let _ = send.finish();
                            Ok(())
                        }
                        .await;
                        match result {
                            Ok(()) => {
                                answered.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(Bad::Malformed(why)) => {
                                let _ = bad_tx.send(why);
                            }
                            Err(Bad::Gone) => {}
                        }
                    });
                }
                Err(_) => break,
            },
            d = conn.read_datagram() => match d {
                Ok(data) => match answer(&data, &mut out) {
                    Ok(()) => {
                        if conn.send_datagram(out.clone().into()).is_ok() {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(why) => {
                        let _ = bad_tx.send(why.to_string());
                    }
                },
                Err(_) => break,
            },
        }
        flush(&answered);
    }
    flush(&answered);
}
