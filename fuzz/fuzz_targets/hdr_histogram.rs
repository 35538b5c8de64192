//! Any bytes as an HdrHistogram V2 payload: only the one layout is accepted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xcbench_snapshot::LatencyHistogram;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = LatencyHistogram::decode(data) {
        let back = LatencyHistogram::decode_base64(&h.encode_base64()).unwrap();
        assert_eq!(back, h);
    }
});
