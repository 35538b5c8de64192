//! Request/response probe session over a reliable stream (TCP now, QUIC streams later),
//! sans-IO: a schedule, requests with sequence numbers, and matching of responses. A request
//! still unanswered after the loss timeout is lost and tells the driver to reconnect: on a
//! stream a stalled connection first shows as latency (retransmissions), then as loss.

use std::collections::VecDeque;

use super::sender::{next_slot, SenderConfig};
use super::{earliest, Event, Moment, Probe};
use crate::wire::rr::{Frame, FrameType};
use crate::wire::{ErrorEstimate, WireError};

/// Why a responder would not answer what arrived: the connection carries something else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespondError {
    #[error("not probe framing: {0}")]
    Framing(#[from] WireError),
    #[error("a response where a request belongs")]
    NotARequest,
    #[error("request of {declared} bytes carries {carried} bytes")]
    Length { declared: usize, carried: usize },
}

/// The response to one whole request (a stream frame or a QUIC stream's or datagram's
/// bytes) received at `t2` (wall clock), into `out` (cleared first): the request's length,
/// sequence and T1, never longer than what arrived. T3 is stamped right before the send
/// with [`Frame::stamp_send`].
pub fn respond(request: &[u8], t2: u64, out: &mut Vec<u8>) -> Result<(), RespondError> {
    let f = Frame::decode(request)?;
    if f.kind != FrameType::Request {
        return Err(RespondError::NotARequest);
    }
    if f.len != request.len() {
        return Err(RespondError::Length {
            declared: f.len,
            carried: request.len(),
        });
    }
    out.clear();
    Frame {
        kind: FrameType::Response,
        t2,
        ..f
    }
    .encode(out);
    Ok(())
}

/// One request/response session.
pub struct RrSession {
    config: SenderConfig,
    /// Monotonic time of the next request.
    next_send_ns: Option<u64>,
    next_seq: u32,
    /// Outstanding requests, oldest first: (seq, T1).
    pending: VecDeque<(u32, Moment)>,
    /// Recently timed-out sequences, to tell late responses from unmatched ones.
    expired: VecDeque<u32>,
    events: VecDeque<Event>,
}

impl RrSession {
    /// A session whose first request goes out at `start_ns` (monotonic).
    pub fn new(config: SenderConfig, start_ns: u64) -> RrSession {
        RrSession {
            config,
            next_send_ns: Some(start_ns),
            next_seq: 0,
            pending: VecDeque::new(),
            expired: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A response arrived at `t4`. T1 travels on the wire as wall time and must come back
    /// unchanged; the round trip is taken on the monotonic clock.
    fn handle_frame(&mut self, t4: Moment, frame: &Frame) {
        if frame.kind != FrameType::Response {
            self.events.push_back(Event::Malformed);
            return;
        }
        if let Some(i) = self.pending.iter().position(|(s, _)| *s == frame.seq) {
            let (seq, t1) = self.pending[i];
            if frame.t1 != t1.wall_ns {
                self.events.push_back(Event::Unmatched);
                return;
            }
            self.pending.remove(i);
            let elapsed = t4.mono_ns.saturating_sub(t1.mono_ns);
            self.events
                .push_back(match super::less_dwell(elapsed, frame.t2, frame.t3) {
                    Some(rtt_ns) => Event::Rtt { seq, rtt_ns },
                    None => Event::ClockMoved { seq },
                });
        } else if self.expired.contains(&frame.seq) {
            self.events.push_back(Event::Late { seq: frame.seq });
        } else {
            self.events.push_back(Event::Unmatched);
        }
    }

    fn remember_expired(&mut self, seq: u32) {
        if self.expired.len() >= 1024 {
            self.expired.pop_front();
        }
        self.expired.push_back(seq);
    }
}

impl Probe for RrSession {
    fn poll_timeout(&self) -> Option<u64> {
        let expiry = self
            .pending
            .front()
            .map(|(_, t1)| t1.mono_ns + self.config.timeout_ns);
        earliest(self.next_send_ns, expiry)
    }

    /// Expires requests older than the loss timeout; true if any did: on a stream a stall
    /// first shows as latency (retransmissions), then as loss, and then the connection is
    /// re-opened.
    fn handle_timeout(&mut self, now_mono: u64) -> bool {
        let mut any = false;
        while let Some(&(seq, t1)) = self.pending.front() {
            if t1.mono_ns + self.config.timeout_ns > now_mono {
                break;
            }
            self.pending.pop_front();
            self.remember_expired(seq);
            self.events.push_back(Event::Lost { seq });
            any = true;
        }
        any
    }

    /// Writes the next request (T1 = `now`) if one is due; the error estimate is STAMP's.
    fn poll_transmit(&mut self, now: Moment, _: ErrorEstimate, buf: &mut Vec<u8>) -> bool {
        match self.next_send_ns {
            Some(due) if now.mono_ns >= due => {
                let (next, skipped) = next_slot(due, self.config.interval_ns, now.mono_ns);
                self.next_send_ns = Some(next);
                if skipped > 0 {
                    self.events.push_back(Event::Skipped { count: skipped });
                }
            }
            _ => return false,
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        buf.clear();
        Frame {
            kind: FrameType::Request,
            seq,
            t1: now.wall_ns,
            t2: 0,
            t3: 0,
            len: self.config.packet_len,
        }
        .encode(buf);
        self.pending.push_back((seq, now));
        self.events.push_back(Event::Sent { seq });
        true
    }

    /// One whole response; a frame that does not decode, or whose length disagrees with
    /// what carried it, means the connection is not answering probes.
    fn handle_input(&mut self, at: Moment, _tos: Option<u8>, bytes: &[u8]) -> bool {
        match Frame::decode(bytes) {
            Ok(f) if f.len == bytes.len() => {
                self.handle_frame(at, &f);
                true
            }
            _ => {
                self.events.push_back(Event::Malformed);
                false
            }
        }
    }

    /// Everything outstanding ends at once: lost when the connection broke (refused, closed
    /// by the peer); abandoned when this agent tore it down after a request stalled, since
    /// what became of the others is unknown and counting them lost would charge the path
    /// with up to timeout/interval losses of the agent's making.
    fn handle_disconnect(&mut self, stalled: bool) {
        while let Some((seq, _)) = self.pending.pop_front() {
            self.remember_expired(seq);
            self.events.push_back(match stalled {
                true => Event::Abandoned { seq },
                false => Event::Lost { seq },
            });
        }
    }

    fn stop(&mut self) {
        self.next_send_ns = None;
    }

    fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::sim::{Pair, Responder};

    const MS: u64 = 1_000_000;
    const EST: ErrorEstimate = ErrorEstimate {
        synchronized: false,
        ptp: false,
        scale: 0,
        multiplier: 1,
    };

    fn response(req: &[u8], t2: u64, t3: u64) -> Vec<u8> {
        let mut out = Vec::new();
        respond(req, t2, &mut out).unwrap();
        Frame::stamp_send(&mut out, t3);
        out
    }

    #[test]
    fn rtt_excludes_dwell_and_timeouts_are_lost_then_late() {
        let cfg = SenderConfig {
            interval_ns: 10 * MS,
            timeout_ns: 100 * MS,
            packet_len: 64,
            dscp: 0,
        };
        let mut s = RrSession::new(cfg, 0);
        let mut buf = Vec::new();
        assert!(s.poll_transmit(Moment::at(0), EST, &mut buf));
        let first = buf.clone();
        assert!(s.poll_transmit(Moment::at(10 * MS), EST, &mut buf));
        let second = buf.clone();
        // Answered 3 ms later with 1 ms spent inside the responder.
        assert!(s.handle_input(Moment::at(3 * MS), None, &response(&first, MS, 2 * MS)));
        assert!(!s.handle_timeout(50 * MS));
        assert!(s.handle_timeout(110 * MS), "second expired: reconnect");
        assert!(s.handle_input(Moment::at(120 * MS), None, &response(&second, 0, 0)));
        let mut bogus = response(&second, 0, 0);
        bogus[7] = 99;
        assert!(s.handle_input(Moment::at(121 * MS), None, &bogus));
        // A response cut short is not probe framing: re-open.
        assert!(!s.handle_input(Moment::at(122 * MS), None, &bogus[..40]));
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert_eq!(
            events,
            vec![
                Event::Sent { seq: 0 },
                Event::Sent { seq: 1 },
                Event::Rtt {
                    seq: 0,
                    rtt_ns: 2 * MS
                },
                Event::Lost { seq: 1 },
                Event::Late { seq: 1 },
                Event::Unmatched,
                Event::Malformed,
            ]
        );
        assert_eq!(Frame::decode(&first).unwrap().len, 64);
    }

    #[test]
    fn a_stall_abandons_what_is_outstanding_and_a_break_loses_it() {
        let cfg = SenderConfig {
            interval_ns: MS,
            timeout_ns: 100 * MS,
            packet_len: 34,
            dscp: 0,
        };
        let three_out = || {
            let mut s = RrSession::new(cfg, 0);
            let mut buf = Vec::new();
            for t in 0..3 {
                assert!(s.poll_transmit(Moment::at(t * MS), EST, &mut buf));
            }
            std::iter::from_fn(|| s.poll_event()).for_each(drop);
            s
        };
        let (mut s, mut broken) = (three_out(), three_out());
        s.handle_disconnect(true);
        assert!(!s.has_pending());
        let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
        let abandoned = events
            .iter()
            .filter(|e| matches!(e, Event::Abandoned { .. }))
            .count();
        assert_eq!(abandoned, 3, "not path loss: {events:?}");
        assert!(!events.iter().any(|e| matches!(e, Event::Lost { .. })));
        // A connection that broke (the peer closed it): lost.
        broken.handle_disconnect(false);
        let lost = std::iter::from_fn(|| broken.poll_event())
            .filter(|e| matches!(e, Event::Lost { .. }))
            .count();
        assert_eq!(lost, 3);
    }

    #[test]
    fn responses_are_never_longer_than_requests_and_garbage_is_named() {
        let mut req = Vec::new();
        Frame {
            kind: FrameType::Request,
            seq: 7,
            t1: 42,
            t2: 0,
            t3: 0,
            len: 300,
        }
        .encode(&mut req);
        let mut out = Vec::new();
        respond(&req, 5, &mut out).unwrap();
        let f = Frame::decode(&out).unwrap();
        assert_eq!(
            (f.kind, f.seq, f.t1, f.t2, out.len()),
            (FrameType::Response, 7, 42, 5, 300)
        );
        let mut longer = req.clone();
        longer.extend_from_slice(&[0; 10]);
        assert_eq!(
            respond(&longer, 5, &mut out),
            Err(RespondError::Length {
                declared: 300,
                carried: 310
            })
        );
        assert!(matches!(
            respond(&req[..200], 5, &mut out),
            Err(RespondError::Framing(WireError::Truncated { .. }))
        ));
        assert_eq!(
            respond(&out, 5, &mut Vec::new()),
            Err(RespondError::NotARequest)
        );
        assert!(matches!(
            respond(b"GET / HTTP/1.1", 5, &mut out),
            Err(RespondError::Framing(WireError::Invalid { .. }))
        ));
    }

    /// `requests` requests every 10 ms (500 ms timeout) over `pair`, against the responder.
    fn over_the_link(pair: Pair, requests: u32) -> Vec<Event> {
        let cfg = SenderConfig {
            interval_ns: 10 * MS,
            timeout_ns: 500 * MS,
            packet_len: 100,
            dscp: 0,
        };
        pair.run(RrSession::new(cfg, 0), Responder, requests)
    }

    fn rtts(events: &[Event]) -> Vec<u64> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Rtt { rtt_ns, .. } => Some(*rtt_ns),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_stream_session_over_the_virtual_link_times_every_round_trip() {
        // A lossless stream: 2 ms out, 3 ms back, 100 us in the responder; one response
        // duplicated on the way back (a retransmission both copies of which arrived).
        let pair = Pair {
            forward_delay_ns: 2 * MS,
            reverse_delay_ns: 3 * MS,
            dwell_ns: 100_000,
            duplicate_reverse: [4].into_iter().collect(),
            duplicate_forward: [8].into_iter().collect(),
            ..Pair::default()
        };
        let events = over_the_link(pair, 20);
        assert_eq!(rtts(&events), vec![5 * MS; 20]);
        // The second copy of each answers a request no longer outstanding and not expired.
        let unmatched = events.iter().filter(|e| **e == Event::Unmatched).count();
        assert_eq!(unmatched, 2);
    }

    #[test]
    fn a_responder_dwell_longer_than_the_round_trip_is_no_round_trip() {
        // The responder's clock jumps 20 ms forward inside request 3's 100 us dwell: that
        // response is answered (not lost, not unmatched) with no RTT; the others are exact.
        let pair = Pair {
            forward_delay_ns: 2 * MS,
            reverse_delay_ns: 3 * MS,
            dwell_ns: 100_000,
            far_wall_step: Some((32 * MS + 50_000, 20 * MS as i64)),
            ..Pair::default()
        };
        let events = over_the_link(pair, 10);
        assert_eq!(rtts(&events), vec![5 * MS; 9]);
        assert!(events.contains(&Event::ClockMoved { seq: 3 }), "{events:?}");
        assert!(!events
            .iter()
            .any(|e| matches!(e, Event::Lost { .. } | Event::Unmatched)));
    }
}
