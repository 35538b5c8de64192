//! Any bytes as a TCP probe stream: decode frames one after another like the responder
//! does; never panics, and every frame decoded round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xcbench_agent::wire::rr::Frame;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(f) = Frame::decode(rest) {
        let mut buf = Vec::new();
        f.encode(&mut buf);
        assert_eq!(Frame::decode(&buf), Ok(f));
        rest = &rest[f.len..];
    }
});
