//! Any bytes as authenticated STAMP packets and through a replay window: decoding never
//! panics, a forged HMAC is refused, and whatever is sealed reads back the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xcbench_agent::probe::replay::ReplayWindow;
use xcbench_agent::wire::stamp_auth::{AuthError, StampKey, StampKeys};
use xcbench_agent::wire::{ReflectedPacket, TestPacket};

fuzz_target!(|data: &[u8]| {
    let key = || StampKey::new(b"fuzz-key-16-byte").expect("16 octets");
    let keys = StampKeys::new(vec![key()]).expect("one key");
    for r in [
        TestPacket::decode_authenticated(data, &keys).map(|_| ()),
        ReflectedPacket::decode_authenticated(data, &keys).map(|_| ()),
    ] {
        // The fuzzer cannot find an HMAC: any input long enough is refused for it.
        assert!(matches!(r, Err(AuthError::Hmac) | Err(AuthError::Malformed(_))));
    }
    // The same bytes read unauthenticated, sealed, read back.
    if let Ok(p) = TestPacket::decode(data) {
        let mut buf = Vec::new();
        p.encode_authenticated(&key(), &mut buf);
        let back = TestPacket::decode_authenticated(&buf, &keys).expect("sealed");
        assert_eq!((back.packet.seq, back.packet.timestamp.raw), (p.seq, p.timestamp.raw));
    }
    // Pairs of (sequence, seconds) through one window: never a panic.
    let mut window = ReplayWindow::new(0, 0);
    for c in data.chunks_exact(5) {
        let seq = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        let _ = window.take(seq, u64::from(c[4]) << 32);
    }
});
