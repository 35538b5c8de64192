//! Equal-cost multipath, as the providers' routers do it: a packet's path is a hash of its
//! 5-tuple (protocol, addresses, ports), so every packet of one flow takes one path and
//! different flows spread over the paths. The hash here is symmetric (a flow and its
//! replies take the same path index, so a path has one delay each way) and fixed (FNV-1a
//! over the protocol and the two endpoints in ascending order): a lab run is repeatable for
//! the same ports. Fragments after the first carry no ports; like routers that hash them on
//! addresses alone, they may take another path than the first fragment.

use super::{Ipv4, Refused};

/// A UDP or TCP flow as one packet carries it, from its source to its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    pub protocol: u8,
    pub src: ([u8; 4], u16),
    pub dst: ([u8; 4], u16),
}

/// The path (0 ..`paths`) `packet` takes, and its flow when it carries ports.
pub fn path_of(packet: &[u8], paths: usize) -> Result<(usize, Option<FlowKey>), Refused> {
    let h = Ipv4::parse(packet)?;
    let fragment_offset = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff;
    let ports = matches!(h.protocol, 6 | 17)
        .then(|| packet.get(h.header_len..h.header_len + 4))
        .flatten()
        .filter(|_| fragment_offset == 0)
        .map(|p| {
            (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )
        });
    let (sport, dport) = ports.unwrap_or((0, 0));
    let flow = ports.map(|_| FlowKey {
        protocol: h.protocol,
        src: (h.src, sport),
        dst: (h.dst, dport),
    });
    let (a, b) = ((h.src, sport), (h.dst, dport));
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut hash = Fnv::new();
    hash.write(&[h.protocol]);
    for (ip, port) in [low, high] {
        hash.write(&ip);
        hash.write(&port.to_be_bytes());
    }
    Ok(((hash.0 % paths.max(1) as u64) as usize, flow))
}

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 20 + 8 + 4];
        p[0] = 0x45;
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p
    }

    #[test]
    fn a_flow_and_its_replies_keep_one_path_and_flows_spread() {
        let (az, oci) = ([198, 18, 1, 1], [198, 18, 2, 1]);
        let mut on = [0usize; 2];
        for sport in 40_000..40_200 {
            let (path, flow) = path_of(&udp(az, sport, oci, 862), 2).unwrap();
            let (back, _) = path_of(&udp(oci, 862, az, sport), 2).unwrap();
            assert_eq!(path, back, "replies take the flow's path");
            assert_eq!(path_of(&udp(az, sport, oci, 862), 2).unwrap().0, path);
            assert_eq!(flow.unwrap().src, (az, sport));
            on[path] += 1;
        }
        // 200 flows over two paths: neither path is left out or takes nearly all.
        assert!(on.iter().all(|n| (60..=140).contains(n)), "{on:?}");
        assert_eq!(path_of(&udp(az, 1, oci, 2), 1).unwrap().0, 0);
        // A later fragment has no ports to hash.
        let mut frag = udp(az, 40_000, oci, 862);
        frag[6..8].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(path_of(&frag, 2).unwrap().1, None);
        assert!(path_of(&[0x45, 0, 0], 2).is_err());
    }
}
