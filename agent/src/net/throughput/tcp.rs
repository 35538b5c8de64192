//! TCP throughput data: the asking side's data connections (each opened with the test's
//! [`Hello`]), and every stream on a blocking thread of its own, so the async runtime never
//! sits between the kernel and the byte counters. A sender counts bytes the kernel accepted,
//! paced by [`Sending`] under a cap; a receiver counts bytes delivered to it and lets about a
//! millisecond of data queue before its read wakes ([`ReadMark`]).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use quinn::Connection;

use super::{relay, transient, Interval, Progress, DRAIN_TIMEOUT, SETUP_TIMEOUT};
use crate::net::clock::now_mono_ns;
use crate::net::socket::{set_congestion, set_read_mark, tcp_info};
use crate::probe::throughput::{Counts, Meter, ReadMark, Sending, Step, Test};
use crate::wire::throughput::{Hello, StreamFigures, TcpEnd};

/// Blocking socket calls wake up at least this often to sample their counters.
const WAKE: Duration = Duration::from_millis(100);
/// The most the TCP receivers of one test side let queue before their reads wake (see
/// [`ReadMark`]); 128 KiB is one default read.
const MAX_READ_MARK: usize = 128 * 1024;

/// The asking side's data connections to `addr`, one per stream, each opened with its hello.
pub fn open_streams(
    addr: SocketAddr,
    test: &Test,
    cookie: [u8; 16],
) -> std::io::Result<Vec<TcpStream>> {
    let n = test.asker_sends().len();
    let mut streams = Vec::with_capacity(n);
    for i in 0..n {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        if let Some(w) = test.window_bytes {
            socket.set_send_buffer_size(w as usize)?;
            socket.set_recv_buffer_size(w as usize)?;
        }
        socket.connect_timeout(&addr.into(), SETUP_TIMEOUT)?;
        let s: TcpStream = socket.into();
        let mut hello = Vec::new();
        Hello {
            stream: i as u8,
            cookie,
        }
        .encode(&mut hello);
        (&s).write_all(&hello)?;
        streams.push(s);
    }
    Ok(streams)
}

/// Runs every stream on its own thread; `sends[i]` says whether this side sends on stream
/// `i`. `on_interval` sees each interval as it closes.
pub async fn run_streams(
    streams: Vec<TcpStream>,
    sends: &[bool],
    test: &Test,
    on_interval: impl FnMut(Interval),
    control: Connection,
) -> Vec<StreamFigures> {
    if let Some(w) = test.window_bytes {
        for s in &streams {
            let s = socket2::SockRef::from(s);
            let _ = s.set_send_buffer_size(w as usize);
            let _ = s.set_recv_buffer_size(w as usize);
        }
    }
    let start = now_mono_ns();
    let sends = sends.to_vec();
    let test = test.clone();
    // The receivers of this process share MAX_READ_MARK: on a path fast enough to reach it,
    // one receiver gains from fewer wake-ups, while several already keep the CPUs busy.
    let read_mark = MAX_READ_MARK / sends.iter().filter(|s| !**s).count().max(1);
    relay(
        move |progress| {
            let threads: Vec<_> = streams
                .into_iter()
                .zip(sends)
                .enumerate()
                .map(|(i, (s, sender))| {
                    let (test, progress) = (test.clone(), progress.clone());
                    std::thread::spawn(move || {
                        if sender {
                            send_stream(s, i as u8, &test, start, &progress)
                        } else {
                            receive_stream(s, i as u8, &test, start, read_mark, &progress)
                        }
                    })
                })
                .collect();
            threads.into_iter().filter_map(|t| t.join().ok()).collect()
        },
        on_interval,
        control,
    )
    .await
}

fn send_stream(
    mut s: TcpStream,
    stream: u8,
    test: &Test,
    start: u64,
    progress: &Progress,
) -> StreamFigures {
    let _ = s.set_write_timeout(Some(WAKE));
    if let Some(cc) = &test.congestion {
        if let Err(e) = set_congestion(&s, cc) {
            tracing::warn!(congestion = %cc, error = %e, "congestion control not set");
        }
    }
    let buf = vec![0u8; test.write_bytes as usize];
    let end = start + test.duration_ns();
    let mut sending = Sending::new(
        Meter::for_test(test, start),
        end,
        test.rate_per_stream(),
        now_mono_ns(),
        1,
        buf.len(),
    );
    let end_figures = |s: &TcpStream| tcp_info(s).map(|i| i.test_end());
    let counts = |sent: u64, tcp: Option<TcpEnd>| Counts {
        bytes: sent,
        retransmits: tcp.map_or(0, |t| t.retransmits),
        ..Counts::default()
    };
    let mut sent = 0u64;
    loop {
        let now = now_mono_ns();
        match sending.poll(now, sent, progress.aborted()) {
            Step::Sample => {
                let closed = sending.sample(now, counts(sent, end_figures(&s)));
                progress.interval(stream, true, closed);
            }
            Step::Done => break,
            Step::Wait(ns) => std::thread::sleep(Duration::from_nanos(ns).min(WAKE)),
            Step::Write(n) => match s.write(&buf[..n]) {
                Ok(n) => sent += n as u64,
                Err(e) if transient(&e) => {}
                Err(_) => break,
            },
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    let tcp = end_figures(&s);
    progress.interval(
        stream,
        true,
        sending.finish(now_mono_ns(), counts(sent, tcp)),
    );
    // Wait for the receiver to close, so the connection is not reset under data in flight.
    let _ = s.set_read_timeout(Some(DRAIN_TIMEOUT));
    let _ = s.read(&mut [0u8; 1]);
    StreamFigures {
        stream,
        sender: true,
        intervals: sending.into_records(),
        tcp,
        quic: None,
    }
}

fn receive_stream(
    mut s: TcpStream,
    stream: u8,
    test: &Test,
    start: u64,
    read_mark: usize,
    progress: &Progress,
) -> StreamFigures {
    let _ = s.set_read_timeout(Some(WAKE));
    let mut buf = vec![0u8; (test.write_bytes as usize).max(128 * 1024)];
    let mut meter = Meter::for_test(test, start);
    let give_up = start + test.duration_ns() + DRAIN_TIMEOUT.as_nanos() as u64;
    let counts = |received: u64| Counts {
        bytes: received,
        ..Counts::default()
    };
    let mut received = 0u64;
    let mut mark = ReadMark::new(now_mono_ns(), buf.len().min(read_mark));
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n as u64,
            Err(e) if transient(&e) => {}
            Err(_) => break,
        }
        let now = now_mono_ns();
        if let Some(bytes) = mark.handle_read(now, received) {
            if let Err(e) = set_read_mark(&s, bytes) {
                tracing::debug!(error = %e, "SO_RCVLOWAT not set");
            }
        }
        if meter.is_due(now) {
            progress.interval(stream, false, meter.handle_sample(now, counts(received)));
        }
        if now >= give_up || progress.aborted() {
            break;
        }
    }
    progress.interval(stream, false, meter.finish(now_mono_ns(), counts(received)));
    StreamFigures {
        stream,
        sender: false,
        intervals: meter.into_records(),
        tcp: None,
        quic: None,
    }
}
