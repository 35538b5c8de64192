//! Any bytes as a throughput-test control stream and as a data connection's hello: decode
//! like the answering agent does; never panics, every message decoded round-trips, and a
//! decoded request's limits check never panics either.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xcbench_agent::wire::throughput::{Control, Hello};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok((msg, used)) = Control::decode(rest) {
        if let Control::Request(spec) = &msg {
            let _ = spec.check();
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
});
