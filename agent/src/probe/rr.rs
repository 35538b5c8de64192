//! Request/response probe session over a reliable stream (TCP now, QUIC streams later),
//! sans-IO: a schedule, requests with sequence numbers, and matching of responses. A request
//! still unanswered after the loss timeout is lost and tells the driver to reconnect: on a
//! stream a stalled connection first shows as latency (retransmissions), then as loss.

use std::collections::VecDeque;

use super::sender::{next_slot, Event, SenderConfig};
use crate::wire::rr::{Frame, FrameType};

/// One request/response session.
pub struct RrSession {
    config: SenderConfig,
    next_send_ns: Option<u64>,
    next_seq: u32,
    /// Outstanding requests, oldest first: (seq, t1).
    pending: VecDeque<(u32, u64)>,
    /// Recently timed-out sequences, to tell late responses from unmatched ones.
    expired: VecDeque<u32>,
    events: VecDeque<Event>,
}

impl RrSession {
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

    /// Writes the next request (t1 = `now`) if one is due.
    pub fn poll_transmit(&mut self, now: u64, buf: &mut Vec<u8>) -> bool {
        match self.next_send_ns {
            Some(due) if now >= due => {
                self.next_send_ns = Some(next_slot(due, self.config.interval_ns, now));
            }
            _ => return false,
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        buf.clear();
        Frame {
            kind: FrameType::Request,
            seq,
            t1: now,
            t2: 0,
            t3: 0,
            len: self.config.packet_len,
        }
        .encode(buf);
        self.pending.push_back((seq, now));
        self.events.push_back(Event::Sent { seq });
        true
    }

    pub fn stop(&mut self) {
        self.next_send_ns = None;
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        let expiry = self
            .pending
            .front()
            .map(|(_, t1)| t1 + self.config.timeout_ns);
        match (self.next_send_ns, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expires requests older than the loss timeout; true if any did (reconnect).
    pub fn handle_timeout(&mut self, now: u64) -> bool {
        let mut any = false;
        while let Some(&(seq, t1)) = self.pending.front() {
            if t1 + self.config.timeout_ns > now {
                break;
            }
            self.pending.pop_front();
            self.remember_expired(seq);
            self.events.push_back(Event::Lost { seq });
            any = true;
        }
        any
    }

    /// Everything outstanding is lost at once (the connection broke).
    pub fn handle_disconnect(&mut self) {
        while let Some((seq, _)) = self.pending.pop_front() {
            self.remember_expired(seq);
            self.events.push_back(Event::Lost { seq });
        }
    }

    /// A response arrived at `t4`.
    pub fn handle_frame(&mut self, t4: u64, frame: &Frame) {
        if frame.kind != FrameType::Response {
            self.events.push_back(Event::Malformed);
            return;
        }
        if let Some(i) = self.pending.iter().position(|(s, _)| *s == frame.seq) {
            let (seq, t1) = self.pending.remove(i).expect("found");
            if frame.t1 != t1 {
                self.pending.insert(i, (seq, t1));
                self.events.push_back(Event::Unmatched);
                return;
            }
            let dwell = frame.t3.saturating_sub(frame.t2);
            let rtt_ns = t4.saturating_sub(t1).saturating_sub(dwell);
            self.events.push_back(Event::Rtt { seq, rtt_ns });
        } else if self.expired.contains(&frame.seq) {
            self.events.push_back(Event::Late { seq: frame.seq });
        } else {
            self.events.push_back(Event::Unmatched);
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn remember_expired(&mut self, seq: u32) {
        if self.expired.len() >= 1024 {
            self.expired.pop_front();
        }
        self.expired.push_back(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn response(req: &[u8], t2: u64, t3: u64) -> Frame {
        let f = Frame::decode(req).unwrap();
        Frame {
            kind: FrameType::Response,
            t2,
            t3,
            ..f
        }
    }

    #[test]
    fn rtt_excludes_dwell_and_timeouts_are_lost_then_late() {
        let cfg = SenderConfig {
            interval_ns: 10 * MS,
            timeout_ns: 100 * MS,
            packet_len: 64,
        };
        let mut s = RrSession::new(cfg, 0);
        let mut buf = Vec::new();
        assert!(s.poll_transmit(0, &mut buf));
        let first = buf.clone();
        assert!(s.poll_transmit(10 * MS, &mut buf));
        let second = buf.clone();
        // Answered 3 ms later with 1 ms spent inside the responder.
        s.handle_frame(3 * MS, &response(&first, MS, 2 * MS));
        assert!(!s.handle_timeout(50 * MS));
        assert!(s.handle_timeout(110 * MS), "second expired: reconnect");
        s.handle_frame(120 * MS, &response(&second, 0, 0));
        let mut bogus = response(&second, 0, 0);
        bogus.seq = 99;
        s.handle_frame(121 * MS, &bogus);
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
            ]
        );
        assert_eq!(Frame::decode(&first).unwrap().len, 64);
    }

    #[test]
    fn disconnect_loses_everything_outstanding() {
        let cfg = SenderConfig {
            interval_ns: MS,
            timeout_ns: 100 * MS,
            packet_len: 34,
        };
        let mut s = RrSession::new(cfg, 0);
        let mut buf = Vec::new();
        for t in 0..3 {
            assert!(s.poll_transmit(t * MS, &mut buf));
        }
        s.handle_disconnect();
        assert!(!s.has_pending());
        let lost = std::iter::from_fn(|| s.poll_event())
            .filter(|e| matches!(e, Event::Lost { .. }))
            .count();
        assert_eq!(lost, 3);
    }
}
