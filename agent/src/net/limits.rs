//! The per-source connection cap both probe responders (TCP and QUIC) apply: at most so many
//! connections from one address at once, each holding a [`SourceSlot`] that gives its place
//! back when dropped, however the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::lock;

/// Open connections per source address, capped.
#[derive(Debug, Clone)]
pub struct PerSource {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place under the cap; freed on drop.
#[derive(Debug)]
pub struct SourceSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerSource {
    pub fn new(max: usize) -> PerSource {
        PerSource {
            max,
            open: Arc::default(),
        }
    }

    /// A place for one more connection from `ip`; `None` at the cap.
    pub fn try_take(&self, ip: IpAddr) -> Option<SourceSlot> {
        let mut open = lock(&self.open);
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_places_back_and_others_are_apart() {
        let cap = PerSource::new(2);
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let first = cap.try_take(a).unwrap();
        let _second = cap.try_take(a).unwrap();
        assert!(cap.try_take(a).is_none(), "at the cap");
        let _other = cap.try_take(b).expect("another source has its own places");
        drop(first);
        let _again = cap.try_take(a).expect("a place freed");
        assert!(cap.try_take(a).is_none());
        assert_eq!(lock(&cap.open).len(), 2);
    }
}
