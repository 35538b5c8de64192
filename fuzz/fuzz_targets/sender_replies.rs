//! A session-sender fed arbitrary datagrams and times between its own probes: no panic,
//! and every event is well-formed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xcbench_agent::probe::{Sender, SenderConfig};
use xcbench_agent::wire::ErrorEstimate;

fuzz_target!(|data: &[u8]| {
    let mut s = Sender::new(
        SenderConfig { interval_ns: 1_000, timeout_ns: 5_000, packet_len: 44 },
        0,
    );
    let est = ErrorEstimate::from_error_ns(1, false);
    let mut buf = Vec::new();
    let mut now = 0u64;
    for chunk in data.chunks(48) {
        now += u64::from(chunk[0]) * 100;
        s.handle_timeout(now);
        s.poll_transmit(now, est, &mut buf);
        s.handle_datagram(now, chunk);
        while s.poll_event().is_some() {}
    }
});
