//! Every default of the agent's configuration and of the throughput tests it asks for,
//! written once: the parser, the command line and the scheduler read them from here, and
//! `agent.sample.toml` shows them (a test holds the two together).

use std::time::Duration;

/// The IANA port for STAMP (RFC 8762); TCP probes use the same number.
pub const STAMP_PORT: u16 = 862;

/// `[agent] metadata_url`: where `cloud = "auto"` reads instance metadata (both clouds
/// answer on this link-local address).
pub const METADATA_URL: &str = "http://169.254.169.254";
/// Instance metadata: how long a connection may take, and a whole answer (connection
/// included). Azure and OCI are asked at once, so a host on neither knows within this.
pub const METADATA_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// `[agent] mesh = "http://..."`: how long fetching the mesh from the collector may take,
/// connection included (at start and at each re-fetch), and the most it may send.
pub const MESH_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
pub const MESH_MAX_BYTES: usize = 1 << 20;

/// `[reflector]`
pub const MAX_SESSIONS: usize = crate::probe::ReflectorLimits::DEFAULT.max_sessions;
pub const MAX_RATE_PER_SOURCE: u32 = crate::probe::RateLimits::DEFAULT.per_source;
pub const MAX_RATE: u32 = crate::probe::RateLimits::DEFAULT.total;
pub const REFLECT_TCP: bool = true;

/// `[collector] report_interval`
pub const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// `[probe_defaults]`
pub const PROBE_INTERVAL: Duration = Duration::from_millis(100);
pub const PAYLOAD_SIZE: usize = crate::wire::UNAUTH_LEN;
pub const DSCP: u8 = 0;
/// Source ports a peer's STAMP probes rotate over, so ECMP inside the providers' networks
/// hashes them onto more than one path (four see both of two paths 7 times in 8).
pub const FLOWS: u8 = 4;
pub const LOSS_TIMEOUT: Duration = Duration::from_secs(2);
pub const CONNECT_INTERVAL: Duration = Duration::from_secs(1);

/// `[bench]`: what peers may ask of this agent.
pub const THROUGHPUT_ENABLED: bool = true;
pub const THROUGHPUT_MAX_DURATION: Duration = Duration::from_secs(60);
pub const THROUGHPUT_MAX_STREAMS: u16 = 16;
pub const THROUGHPUT_MAX_UDP_RATE_BPS: u64 = 10_000_000_000;

/// A throughput test's length (`xcbench bench -t`, `[bench.schedule] duration`).
pub const THROUGHPUT_DURATION: Duration = Duration::from_secs(10);

/// `[bench.schedule]`: the tests this agent runs by itself.
pub const SCHEDULE_DURATION: Duration = THROUGHPUT_DURATION;
/// The warm-up left out: 1 s, or half a shorter test.
pub fn schedule_omit(duration: Duration) -> Duration {
    Duration::from_secs(1).min(duration / 2)
}
pub const SCHEDULE_PROTOCOL: crate::wire::throughput::Protocol =
    crate::wire::throughput::Protocol::Tcp;
pub const SCHEDULE_DIRECTION: crate::wire::throughput::Direction =
    crate::wire::throughput::Direction::Forward;
pub const SCHEDULE_STREAMS: u16 = 1;
pub const SCHEDULE_UDP_RATE_BPS: u64 = 100_000_000;

/// A throughput test's bytes per write: TCP and QUIC.
pub const THROUGHPUT_WRITE_BYTES: u32 = 128 * 1024;
/// A UDP test's datagram payload: fits a 1400-byte ExpressRoute/FastConnect path (1372 +
/// 8 UDP + 20 IPv4 = 1400).
pub const THROUGHPUT_DATAGRAM_BYTES: u32 = 1372;
/// A UDP test's rate when none is given on the command line (iperf3's default too).
pub const THROUGHPUT_UDP_RATE_BPS: u64 = 1_000_000;
/// Interval between a test's figures.
pub const THROUGHPUT_INTERVAL: Duration = Duration::from_secs(1);

/// The bytes per write or per datagram of a test over `protocol`.
pub fn write_bytes(protocol: crate::wire::throughput::Protocol) -> u32 {
    match protocol {
        crate::wire::throughput::Protocol::Udp => THROUGHPUT_DATAGRAM_BYTES,
        _ => THROUGHPUT_WRITE_BYTES,
    }
}
