//! Throughput tests, sans-IO: the checked request and the answering agent's limits, the
//! meters and pacing of each stream, UDP datagram accounting, the read mark of a TCP
//! receiver, totals, what a finished test reports, and when scheduled tests are due. The
//! caller brings the clock (monotonic ns) and the bytes; `net::throughput` does the I/O.
//!
//! # Layout
//! - [`spec`]: [`Test`] (a request that passed every check), [`ServeLimits`], [`Refusal`],
//!   QUIC window sizing.
//! - [`meter`]: [`Meter`] (one stream's intervals) and [`Counts`].
//! - [`pacer`]: [`Pacer`] and [`Sending`] (what a bulk sender does next).
//! - [`datagrams`]: [`Datagrams`] (a UDP receiver's loss, order and jitter).
//! - [`read_mark`]: [`ReadMark`] (SO_RCVLOWAT of a TCP receiver).
//! - [`totals`](mod@totals): [`Totals`] over the counted intervals.
//! - [`report`]: [`TestReport`] (both ends' figures), its directions and snapshot records.
//! - [`schedule`]: [`Schedule`] (when scheduled tests are due).

pub mod datagrams;
pub mod meter;
pub mod pacer;
pub mod read_mark;
pub mod report;
pub mod schedule;
pub mod spec;
pub mod totals;

pub use datagrams::Datagrams;
pub use meter::{Counts, Meter};
pub use pacer::{Pacer, Sending, Step};
pub use read_mark::ReadMark;
pub use report::{Addresses, FlowFigures, TestReport};
pub use schedule::Schedule;
pub use spec::{Refusal, ServeLimits, SpecError, Test};
pub use totals::{totals, Totals};
