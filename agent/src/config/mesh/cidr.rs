//! Address spaces: [`Cidr`] blocks (`10.10.0.0/16`, `fd00:10::/48`), whether one holds an
//! address or overlaps another, and which addresses an interconnect may carry
//! ([`Scope`]: private ranges only; loopback for tests).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use xcbench_snapshot::Expected;

/// A network block: an address whose host bits are zero, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The block of exactly one address.
    pub fn host(ip: IpAddr) -> Cidr {
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        Cidr {
            network: ip,
            prefix,
        }
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (bits(self.network), bits(ip)) {
            (Bits::V4(n), Bits::V4(a)) => {
                masked(n.into(), self.prefix, 32) == masked(a.into(), self.prefix, 32)
            }
            (Bits::V6(n), Bits::V6(a)) => {
                masked(n, self.prefix, 128) == masked(a, self.prefix, 128)
            }
            _ => false,
        }
    }

    /// Whether the two blocks share an address (one then holds the other's network).
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// Whether every address of this block is inside `outer`.
    pub fn within(&self, outer: &Cidr) -> bool {
        outer.prefix <= self.prefix && outer.contains(self.network)
    }
}

enum Bits {
    V4(u32),
    V6(u128),
}

fn bits(ip: IpAddr) -> Bits {
    match ip {
        IpAddr::V4(a) => Bits::V4(u32::from(a)),
        IpAddr::V6(a) => Bits::V6(u128::from(a)),
    }
}

/// `value` with all but its first `prefix` of `width` bits cleared.
fn masked(value: u128, prefix: u8, width: u8) -> u128 {
    let ones = match prefix {
        0 => return 0,
        128 => u128::MAX,
        p => (1u128 << p) - 1,
    };
    value & (ones << (width - prefix))
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = Expected;

    /// `10.10.0.0/16`, `fd00:10::/48`; the host bits must be zero.
    fn from_str(s: &str) -> Result<Cidr, Expected> {
        let bad =
            || Expected("must be a CIDR block such as \"10.10.0.0/16\" or \"fd00:10::/48\"".into());
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let network: IpAddr = ip.parse().map_err(|_| bad())?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= width && !prefix.starts_with('+'))
            .ok_or_else(bad)?;
        let cidr = Cidr { network, prefix };
        let value = match bits(network) {
            Bits::V4(v) => u128::from(v),
            Bits::V6(v) => v,
        };
        if masked(value, prefix, width) != value {
            let net = match network {
                IpAddr::V4(_) => {
                    IpAddr::from(std::net::Ipv4Addr::from(masked(value, prefix, 32) as u32))
                }
                IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(masked(value, prefix, 128))),
            };
            return Err(Expected(format!(
                "must be a network address with its host bits zero, e.g. \"{net}/{prefix}\""
            )));
        }
        Ok(cidr)
    }
}

/// What kind of address an agent has: what a mesh admits ([`Scope`]) and what preflight
/// says of each peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressClass {
    /// RFC 1918: 10/8, 172.16/12, 192.168/16.
    Rfc1918,
    /// RFC 6598 shared address space, 100.64/10.
    Rfc6598,
    /// IPv6 unique local, fc00::/7.
    UniqueLocal,
    /// 127/8, ::1: the tests' hosts, never a real peer.
    Loopback,
    /// 198.18/15 (RFC 2544): the lab's benchmarking addresses.
    Benchmarking,
    /// Anything else: not carried by a private interconnect.
    Public,
}

impl AddressClass {
    /// The class of one address (an IPv4-mapped IPv6 address as its IPv4 one).
    pub fn of(ip: IpAddr) -> AddressClass {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        RANGES
            .iter()
            .find(|(range, _)| {
                let range: Cidr = range.parse().expect("the address ranges parse");
                range.contains(ip)
            })
            .map_or(AddressClass::Public, |(_, class)| *class)
    }

    /// A private interconnect carries it: RFC 1918, RFC 6598 or IPv6 unique local.
    pub fn private(self) -> bool {
        matches!(
            self,
            AddressClass::Rfc1918 | AddressClass::Rfc6598 | AddressClass::UniqueLocal
        )
    }

    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Rfc1918 => "private (RFC 1918)",
            AddressClass::Rfc6598 => "private (RFC 6598 shared space)",
            AddressClass::UniqueLocal => "private (IPv6 unique local)",
            AddressClass::Loopback => "loopback (tests only)",
            AddressClass::Benchmarking => "benchmarking range 198.18/15 (the lab)",
            AddressClass::Public => "PUBLIC: the interconnect carries private addresses only",
        }
    }

    pub fn allowed(self) -> bool {
        self != AddressClass::Public
    }
}

/// Every range that is not public, with its class: RFC 1918, RFC 6598 (shared address
/// space, which OCI and carrier NAT use), IPv6 unique local, loopback, and RFC 2544's
/// benchmarking range (the lab's).
const RANGES: [(&str, AddressClass); 8] = [
    ("10.0.0.0/8", AddressClass::Rfc1918),
    ("172.16.0.0/12", AddressClass::Rfc1918),
    ("192.168.0.0/16", AddressClass::Rfc1918),
    ("100.64.0.0/10", AddressClass::Rfc6598),
    ("fc00::/7", AddressClass::UniqueLocal),
    ("127.0.0.0/8", AddressClass::Loopback),
    ("::1/128", AddressClass::Loopback),
    ("198.18.0.0/15", AddressClass::Benchmarking),
];

/// Which addresses a mesh may use: the private ranges, and loopback only where a test says
/// so (`mesh.allow_loopback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Private,
    PrivateOrLoopback,
}

impl Scope {
    /// What an address outside the scope is told.
    pub fn expected(self) -> &'static str {
        match self {
            Scope::Private => "must be private (RFC 1918 10/8, 172.16/12, 192.168/16; RFC 6598 100.64/10; IPv6 ULA fc00::/7): a private interconnect carries nothing else",
            Scope::PrivateOrLoopback => "must be private (RFC 1918 10/8, 172.16/12, 192.168/16; RFC 6598 100.64/10; IPv6 ULA fc00::/7) or, with mesh.allow_loopback, loopback",
        }
    }

    /// Whether every address of `block` is in scope: it lies inside one range of an
    /// admitted [`AddressClass`].
    pub fn admits(self, block: &Cidr) -> bool {
        RANGES.iter().any(|(range, class)| {
            let admitted = class.private()
                || (self == Scope::PrivateOrLoopback && *class == AddressClass::Loopback);
            admitted && block.within(&range.parse().expect("the address ranges parse"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_parse_hold_addresses_and_overlap() {
        let vnet = c("10.10.0.0/16");
        assert_eq!(vnet.to_string(), "10.10.0.0/16");
        assert!(vnet.contains("10.10.255.7".parse().unwrap()));
        assert!(!vnet.contains("10.11.0.1".parse().unwrap()));
        assert!(!vnet.contains("::1".parse().unwrap()));
        assert!(vnet.overlaps(&c("10.10.128.0/20")));
        assert!(c("10.0.0.0/8").overlaps(&vnet));
        assert!(!vnet.overlaps(&c("10.20.0.0/16")));
        assert!(c("0.0.0.0/0").contains("192.0.2.1".parse().unwrap()));
        assert!(c("fd00:10::/48").contains("fd00:10::5".parse().unwrap()));
        assert!(c("10.10.0.5/32").within(&vnet));
        assert!(!c("10.0.0.0/8").within(&vnet));
        assert_eq!(
            "10.10.0.5/16".parse::<Cidr>().unwrap_err().0,
            "must be a network address with its host bits zero, e.g. \"10.10.0.0/16\""
        );
        for bad in [
            "10.10.0.0",
            "10.10.0.0/33",
            "10.10.0.0/",
            "x/8",
            "10.0.0.0/+8",
            "::/129",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_private_ranges_are_in_scope_and_loopback_on_request() {
        for private in [
            "10.10.0.0/16",
            "172.31.0.0/16",
            "192.168.1.0/24",
            "100.64.0.0/10",
            "fd12:3456::/32",
        ] {
            assert!(Scope::Private.admits(&c(private)), "{private}");
        }
        for public in [
            "20.1.0.0/16",
            "172.32.0.0/16",
            "10.0.0.0/7",
            "100.128.0.0/16",
            "2001:db8::/32",
            "127.0.0.0/8",
        ] {
            assert!(!Scope::Private.admits(&c(public)), "{public}");
        }
        assert!(Scope::PrivateOrLoopback.admits(&c("127.0.0.2/31")));
        assert!(Scope::PrivateOrLoopback.admits(&Cidr::host("::1".parse().unwrap())));
        assert!(!Scope::PrivateOrLoopback.admits(&c("8.8.8.0/24")));
    }

    #[test]
    fn addresses_are_classified() {
        let c = |s: &str| AddressClass::of(s.parse().unwrap());
        assert_eq!(c("10.1.2.3"), AddressClass::Rfc1918);
        assert_eq!(c("172.31.255.1"), AddressClass::Rfc1918);
        assert_eq!(c("172.32.0.1"), AddressClass::Public);
        assert_eq!(c("192.168.0.1"), AddressClass::Rfc1918);
        assert_eq!(c("100.64.0.1"), AddressClass::Rfc6598);
        assert_eq!(c("100.128.0.1"), AddressClass::Public);
        assert_eq!(c("fd00::1"), AddressClass::UniqueLocal);
        assert_eq!(c("2001:db8::1"), AddressClass::Public);
        assert_eq!(c("::ffff:10.0.0.1"), AddressClass::Rfc1918);
        assert_eq!(c("198.18.2.1"), AddressClass::Benchmarking);
        assert_eq!(c("8.8.8.8"), AddressClass::Public);
        assert!(!c("8.8.8.8").allowed() && c("127.0.0.1").allowed());
    }
}
