//! A STAMP session-sender and a request/response session fed arbitrary replies and times
//! between their own probes: no panic, and every probe sent ends answered, lost or
//! abandoned (a stalled connection torn down), once.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xcbench_agent::probe::{Event, Moment, Probe, RrSession, Sender, SenderConfig};
use xcbench_agent::wire::ErrorEstimate;

fn feed(mut p: impl Probe, data: &[u8]) {
    let est = ErrorEstimate::from_error_ns(1, false);
    let mut buf = Vec::new();
    let mut now = 0u64;
    let (mut sent, mut settled) = (0u64, 0u64);
    let mut count = |p: &mut dyn Probe| {
        while let Some(e) = p.poll_event() {
            match e {
                Event::Sent { .. } => sent += 1,
                Event::Lost { .. }
                | Event::Abandoned { .. }
                | Event::Reply(_)
                | Event::Rtt { .. }
                | Event::ClockMoved { .. } => settled += 1,
                _ => {}
            }
        }
    };
    for chunk in data.chunks(48) {
        now += u64::from(chunk[0]) * 100;
        p.handle_timeout(now);
        p.poll_transmit(Moment::at(now), est, &mut buf);
        // The last byte stands for the traffic class the datagram arrived with.
        let tos = chunk.last().copied().filter(|t| t % 3 != 0);
        if !p.handle_input(Moment::at(now), tos, chunk) {
            // Either cause: the first byte of the chunk chooses.
            p.handle_disconnect(chunk[0] % 2 == 0);
        }
        count(&mut p);
    }
    p.stop();
    p.handle_timeout(u64::MAX / 2);
    count(&mut p);
    assert!(!p.has_pending());
    assert_eq!(sent, settled, "every probe sent is answered, lost or abandoned once");
}

fuzz_target!(|data: &[u8]| {
    let config = SenderConfig {
        interval_ns: 1_000,
        timeout_ns: 5_000,
        packet_len: 44,
        dscp: 0,
    };
    feed(Sender::new(config, 0), data);
    feed(RrSession::new(config, 0), data);
});
