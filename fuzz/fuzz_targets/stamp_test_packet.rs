//! Any bytes into the reflector, open and keyed: decode, answer (RFC 8972 TLVs included),
//! and the reply is never longer than the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

use xcbench_agent::probe::{Arrival, Moment, Reflector, ReflectorKeys, ReflectorLimits};
use xcbench_agent::wire::stamp_auth::{StampKey, StampKeys};
use xcbench_agent::wire::{ErrorEstimate, TestPacket};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = TestPacket::decode(data) {
        let mut buf = Vec::new();
        p.encode(&mut buf);
        assert_eq!(TestPacket::decode(&buf), Ok(p));
    }
    let key = StampKey::new(b"0123456789abcdef").unwrap();
    let keys = Arc::new(StampKeys::new(vec![key]).unwrap());
    let est = ErrorEstimate::from_error_ns(1_000, false);
    let arrival = Arrival {
        to: Some([127, 0, 0, 2].into()),
        local_port: 862,
        ttl: Some(64),
        tos: Some(0xb9),
        ..Arrival::new(Moment::at(1), ([127, 0, 0, 1], 9).into())
    };
    for keyed in [false, true] {
        let mut r = Reflector::new(ReflectorLimits::default());
        if keyed {
            r.set_keys(ReflectorKeys::for_others(Some(keys.clone())));
        }
        let mut out = Vec::new();
        if r.handle_datagram(&arrival, est, data, &mut out).is_ok() {
            assert_eq!(out.len(), data.len());
        }
    }
});
