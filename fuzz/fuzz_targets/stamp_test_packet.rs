//! Any bytes into the reflector: decode, answer, and the reply is never longer than the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xcbench_agent::probe::{Moment, Reflector, ReflectorLimits};
use xcbench_agent::wire::{ErrorEstimate, TestPacket};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = TestPacket::decode(data) {
        let mut buf = Vec::new();
        p.encode(&mut buf);
        assert_eq!(TestPacket::decode(&buf), Ok(p));
    }
    let mut r = Reflector::new(ReflectorLimits::default());
    let mut out = Vec::new();
    let est = ErrorEstimate::from_error_ns(1_000, false);
    if r
        .handle_datagram(
            Moment::at(1),
            ([127, 0, 0, 1], 9).into(),
            Some(64),
            est,
            data,
            &mut out,
        )
        .is_ok()
    {
        assert_eq!(out.len(), data.len());
    }
});
