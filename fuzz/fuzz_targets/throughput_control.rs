//! Any bytes as a throughput-test control stream, a data connection's hello and a UDP data
//! datagram: decode like the answering agent does; never panics, every message decoded
//! round-trips, and checking a decoded request (and this agent's limits) never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xcbench_agent::probe::throughput::{ServeLimits, Test};
use xcbench_agent::wire::throughput::{Control, DataHeader, Hello};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok((msg, used)) = Control::decode(rest) {
        if let Control::Request(spec) = &msg {
            if let Ok(test) = Test::try_from(spec.clone()) {
                let limits = ServeLimits {
                    max_duration_ms: 60_000,
                    max_streams: 16,
                    max_udp_rate_bps: 1_000_000_000,
                };
                let _ = limits.check(&test);
                let _ = test.asker_sends();
            }
        }
        let mut buf = Vec::new();
        msg.encode(&mut buf);
        assert_eq!(Control::decode(&buf).map(|(m, _)| m), Ok(msg));
        rest = &rest[used..];
    }
    if let Ok(h) = Hello::decode(data) {
        let mut buf = Vec::new();
        h.encode(&mut buf);
        assert_eq!(Hello::decode(&buf), Ok(h));
    }
    if let Ok(h) = DataHeader::decode(data) {
        let mut buf = Vec::new();
        h.encode(&mut buf);
        assert_eq!(DataHeader::decode(&buf), Ok(h));
    }
});
