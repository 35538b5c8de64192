//! Any bytes as a reflected packet: decode never panics and round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xcbench_agent::wire::ReflectedPacket;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ReflectedPacket::decode(data) {
        let mut buf = Vec::new();
        p.encode(&mut buf);
        assert_eq!(ReflectedPacket::decode(&buf), Ok(p));
    }
});
