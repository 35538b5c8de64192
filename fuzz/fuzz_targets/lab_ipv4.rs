//! Any bytes as a packet the lab emulator reads from a TUN device: parsing never panics, and
//! a packet that parses can be fragmented to any MTU the lab allows, each fragment parsing
//! again and no larger than the MTU.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xcbench_lab::link::{fragment, Ipv4};

fuzz_target!(|data: &[u8]| {
    let Some((&mtu_byte, packet)) = data.split_first() else {
        return;
    };
    if let Ok(h) = Ipv4::parse(packet) {
        let mtu = 576 + usize::from(mtu_byte) * 32;
        for f in fragment(packet, &h, mtu) {
            assert!(f.len() <= mtu, "{} > {mtu}", f.len());
            assert!(Ipv4::parse(&f).is_ok());
        }
    }
});
