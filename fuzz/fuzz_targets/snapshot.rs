//! Any bytes as a snapshot: decode never panics, never allocates unboundedly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xcbench_snapshot::Snapshot;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Snapshot::decode(data) {
        let mut buf = Vec::new();
        s.encode(&mut buf);
        assert_eq!(Snapshot::decode(&buf), Ok(s));
    }
});
