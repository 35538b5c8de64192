//! What the load generators share: a repeatable random source and the interconnect's
//! latency shape they draw samples from.

/// A small deterministic generator (xorshift), so runs are repeatable.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// One round trip of an interconnect, as (base, tail) in ns: a base of 1.4 to 1.6 ms,
    /// and for 1% of samples a tail of up to 5 ms on top.
    pub(crate) fn interconnect(&mut self) -> (u64, u64) {
        let base = 1_400_000 + self.next() % 200_000;
        let tail = if self.next().is_multiple_of(100) {
            self.next() % 5_000_000
        } else {
            0
        };
        (base, tail)
    }
}
