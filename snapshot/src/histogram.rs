//! The single latency histogram layout used end to end, and its wire codec.
//!
//! Values are nanoseconds; the histogram resolves 1 us to 60 s at 3 significant digits:
//! below about 1 ms a bucket is 512 ns wide, above it every value is kept within 0.1%. Larger values saturate at 60 s, so a timeout is still
//! counted. The codec is HdrHistogram's V2 serialized form (uncompressed), base64 in JSON; the
//! decoder reads the 40-byte V2 header itself and refuses any other layout *before* the
//! library allocates counts for it, so a hostile header cannot ask for gigabytes; where only
//! the non-empty buckets are wanted (the collector's ingest), [`decode_buckets_base64`]
//! reads them from the encoding without a counts array at all.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

/// Lowest discernible value: 1 us.
pub const LOWEST_NS: u64 = 1_000;
/// Highest trackable value: 60 s; larger samples are recorded as 60 s.
pub const HIGHEST_NS: u64 = 60_000_000_000;
/// Significant decimal digits kept for every value.
pub const SIGNIFICANT_DIGITS: u8 = 3;

const V2_HEADER_LEN: usize = 40;
/// The cookie of an uncompressed V2 histogram (8-byte counts), the form [`LatencyHistogram::encode_base64`]
/// writes.
const V2_COOKIE: u32 = 0x1c84_9313;
/// Counts bytes of a full histogram of this layout are far below this; anything above is hostile.
const MAX_ENCODED_BYTES: usize = 1 << 20;

/// Why a histogram could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HdrCodecError {
    #[error("not valid base64: {0}")]
    Base64(String),
    #[error("{len} bytes: need at least the 40-byte V2 header")]
    Truncated { len: usize },
    #[error("{len} bytes: must be at most {MAX_ENCODED_BYTES}")]
    TooLarge { len: usize },
    #[error("header {field} = {value}: must be {expected} (1 us .. 60 s, 3 digits)")]
    Layout {
        field: &'static str,
        value: u64,
        expected: u64,
    },
    #[error("payload length {payload} exceeds the {available} bytes after the header")]
    PayloadLength { payload: u64, available: usize },
    #[error("not a V2 HdrHistogram: {0}")]
    Invalid(String),
}

/// A latency histogram in nanoseconds with the fixed layout above.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram(Histogram<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        // The bounds are constants that satisfy the library's preconditions.
        let h = Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        LatencyHistogram(h)
    }

    /// Records one sample; values above 60 s are recorded as 60 s.
    pub fn record_ns(&mut self, value: u64) {
        self.0.saturating_record(value.min(HIGHEST_NS));
    }

    /// Records `count` samples of `value` (e.g. a bucket of another histogram of this
    /// layout, by its highest equivalent value: they land in the same bucket).
    pub fn record_n_ns(&mut self, value: u64, count: u64) {
        self.0.saturating_record_n(value.min(HIGHEST_NS), count);
    }

    /// Total number of samples.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds another histogram of the same layout (lossless).
    pub fn add(&mut self, other: &LatencyHistogram) {
        // Same layout on both sides, so add cannot run out of range.
        self.0.add(&other.0).expect("same histogram layout");
    }

    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// Non-empty buckets as (highest value equivalent to the bucket, count), ascending.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
    }

    /// The underlying HdrHistogram, for quantiles and iteration.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.0
    }

    /// V2 serialized form, base64.
    pub fn encode_base64(&self) -> String {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&self.0, &mut bytes)
            .expect("serializing to a Vec cannot fail");
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Parses base64 V2 bytes, refusing any other layout before allocating.
    pub fn decode_base64(text: &str) -> Result<LatencyHistogram, HdrCodecError> {
        if text.len() > MAX_ENCODED_BYTES * 4 / 3 + 4 {
            return Err(HdrCodecError::TooLarge { len: text.len() });
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| HdrCodecError::Base64(e.to_string()))?;
        Self::decode(&bytes)
    }

    /// Parses V2 bytes, refusing any other layout before allocating.
    pub fn decode(bytes: &[u8]) -> Result<LatencyHistogram, HdrCodecError> {
        check_v2_header(bytes)?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|e| HdrCodecError::Invalid(format!("{e:?}")))?;
        Ok(LatencyHistogram(h))
    }
}

/// The non-empty buckets of a base64 V2 histogram of this layout, as
/// [`LatencyHistogram::buckets`] gives them (highest equivalent value, count; ascending),
/// and their total count, read straight from the encoding. Decoding into a
/// [`LatencyHistogram`] allocates its whole counts array (about 220 kB) per histogram, and
/// the collector ingests five per series: 300 such allocations for one snapshot of an
/// agent with 60 peers (seen with `perf probe` on malloc). The same checks as
/// [`LatencyHistogram::decode_base64`], and a count past the layout's last bucket (above
/// 60 s) is refused.
pub fn decode_buckets_base64(text: &str) -> Result<(Vec<(u64, u64)>, u64), HdrCodecError> {
    if text.len() > MAX_ENCODED_BYTES * 4 / 3 + 4 {
        return Err(HdrCodecError::TooLarge { len: text.len() });
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| HdrCodecError::Base64(e.to_string()))?;
    decode_buckets(&bytes)
}

/// [`decode_buckets_base64`] of the V2 bytes.
pub fn decode_buckets(bytes: &[u8]) -> Result<(Vec<(u64, u64)>, u64), HdrCodecError> {
    check_v2_header(bytes)?;
    let u32_at = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let cookie = u32_at(0);
    if cookie != V2_COOKIE {
        return Err(HdrCodecError::Invalid(format!(
            "cookie {cookie:#x}: must be {V2_COOKIE:#x} (uncompressed V2)"
        )));
    }
    if u32_at(8) != 0 {
        return Err(HdrCodecError::Invalid(format!(
            "normalizing index offset {}: must be 0",
            u32_at(8)
        )));
    }
    let ratio = f64::from_be_bytes(bytes[32..40].try_into().expect("8 bytes"));
    if ratio != 1.0 {
        return Err(HdrCodecError::Invalid(format!(
            "integer to double ratio {ratio}: must be 1"
        )));
    }
    let payload = &bytes[V2_HEADER_LEN..V2_HEADER_LEN + u32_at(4) as usize];
    let (mut buckets, mut total, mut index, mut at) = (Vec::new(), 0u64, 0u64, 0);
    while at < payload.len() {
        let (zigzag, len) = hdr_varint(&payload[at..]).ok_or_else(|| {
            HdrCodecError::Invalid(format!("a count at byte {at} runs past the payload"))
        })?;
        at += len;
        match crate::varint::unzigzag(zigzag) {
            // A run of empty buckets.
            zeros @ ..0 => {
                index = index.checked_add(zeros.unsigned_abs()).ok_or_else(|| {
                    HdrCodecError::Invalid(format!("a run of {zeros} empty buckets overflows"))
                })?;
            }
            count => {
                if count > 0 {
                    let value = bucket_value(index).ok_or_else(|| {
                        HdrCodecError::Invalid(format!(
                            "a count at bucket {index}: past the layout's last bucket"
                        ))
                    })?;
                    let count = count as u64;
                    total = total.checked_add(count).ok_or_else(|| {
                        HdrCodecError::Invalid("the counts overflow 64 bits".to_owned())
                    })?;
                    buckets.push((value, count));
                }
                index += 1;
            }
        }
    }
    Ok((buckets, total))
}

/// HdrHistogram's varint (LEB128-64b9B): seven bits a byte, low first, and a ninth byte of
/// eight bits; the value and the bytes it took, `None` when `buf` ends inside it.
fn hdr_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for i in 0..8 {
        let b = *buf.get(i)?;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    Some((v | (u64::from(*buf.get(8)?) << 56), 9))
}

/// The value at quantile `q` of non-empty buckets (highest equivalent value, count),
/// ascending, holding `count` samples, the way HdrHistogram reports it (the bucket's
/// highest equivalent value); `None` when empty. The collector's answers and the gate's
/// merge of several collectors' answers both read quantiles this way.
pub fn quantile_of(
    buckets: impl IntoIterator<Item = (u64, u64)>,
    count: u64,
    q: f64,
) -> Option<u64> {
    if count == 0 {
        return None;
    }
    let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
    let (mut seen, mut last) = (0, None);
    for (value, n) in buckets {
        seen += n;
        last = Some(value);
        if seen >= rank {
            return Some(value);
        }
    }
    last
}

/// Of non-empty buckets (highest equivalent value, count), ascending: the samples certainly
/// at or below `threshold_ns`, and those whose bucket straddles it (their exact values are
/// not kept). `lowest` maps a bucket's highest equivalent value to its lowest.
pub fn within_of(
    buckets: impl IntoIterator<Item = (u64, u64)>,
    threshold_ns: u64,
    lowest: impl Fn(u64) -> u64,
) -> (u64, u64) {
    let (mut certain, mut straddling) = (0, 0);
    for (value, count) in buckets {
        if value <= threshold_ns {
            certain += count;
        } else if lowest(value) <= threshold_ns {
            straddling += count;
        } else {
            break;
        }
    }
    (certain, straddling)
}

/// Bits below the smallest bucket width (512 ns: the largest power of two <= [`LOWEST_NS`]).
const UNIT_MAGNITUDE: u32 = 9;
/// Half the sub-buckets per power of two, as a power of two: 3 digits need 2,048 sub-buckets
/// (the next power of two at or above 2 x 10^3), half of them 1,024.
const HALF_SUB_BUCKETS_MAGNITUDE: u32 = 10;

/// The position of the bucket holding `value_ns` among all buckets of the layout, counted
/// from 0 at the smallest value: HdrHistogram's own index (magnitude, then sub-bucket), so
/// neighbouring buckets have neighbouring positions and a run of them codes in a byte each.
pub fn bucket_position(value_ns: u64) -> u64 {
    let v = value_ns.min(HIGHEST_NS);
    let mask = ((1u64 << (HALF_SUB_BUCKETS_MAGNITUDE + 1)) - 1) << UNIT_MAGNITUDE;
    let bucket = u64::from(64 - UNIT_MAGNITUDE - HALF_SUB_BUCKETS_MAGNITUDE - 1)
        - u64::from((v | mask).leading_zeros());
    let sub = v >> (bucket + u64::from(UNIT_MAGNITUDE));
    ((bucket + 1) << HALF_SUB_BUCKETS_MAGNITUDE) + sub - (1 << HALF_SUB_BUCKETS_MAGNITUDE)
}

/// The highest value of the bucket at `position` (see [`bucket_position`]); `None` past the
/// layout's last bucket.
pub fn bucket_value(position: u64) -> Option<u64> {
    let half = 1u64 << HALF_SUB_BUCKETS_MAGNITUDE;
    let (bucket, sub) = match (position >> HALF_SUB_BUCKETS_MAGNITUDE).checked_sub(1) {
        Some(b) => (b, (position & (half - 1)) + half),
        None => (0, position & (half - 1)),
    };
    let shift = bucket + u64::from(UNIT_MAGNITUDE);
    let lowest = sub.checked_shl(u32::try_from(shift).ok()?)?;
    let highest = lowest.checked_add((1u64 << shift) - 1)?;
    (lowest <= HIGHEST_NS && bucket_position(lowest) == position).then_some(highest)
}

fn check_v2_header(bytes: &[u8]) -> Result<(), HdrCodecError> {
    if bytes.len() < V2_HEADER_LEN {
        return Err(HdrCodecError::Truncated { len: bytes.len() });
    }
    if bytes.len() > MAX_ENCODED_BYTES {
        return Err(HdrCodecError::TooLarge { len: bytes.len() });
    }
    let u32_at = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let payload = u64::from(u32_at(4));
    let available = bytes.len() - V2_HEADER_LEN;
    if payload > available as u64 {
        return Err(HdrCodecError::PayloadLength { payload, available });
    }
    for (field, value, expected) in [
        (
            "significant digits",
            u64::from(u32_at(12)),
            u64::from(SIGNIFICANT_DIGITS),
        ),
        ("lowest discernible value", u64_at(16), LOWEST_NS),
        ("highest trackable value", u64_at(24), HIGHEST_NS),
    ] {
        if value != expected {
            return Err(HdrCodecError::Layout {
                field,
                value,
                expected,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_precision() {
        let mut h = LatencyHistogram::new();
        for v in [0, 999, 1_000, 25_000, 1_234_567, 59_999_999_999, u64::MAX] {
            h.record_ns(v);
        }
        let back = LatencyHistogram::decode_base64(&h.encode_base64()).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.len(), 7);
        // Saturated at 60 s (within the bucket's precision).
        let max = back.inner().max();
        assert!(
            (HIGHEST_NS..=HIGHEST_NS + HIGHEST_NS / 1000).contains(&max),
            "{max}"
        );
        // Below ~1 ms buckets are 512 ns wide (the 1 us lowest discernible value); above, 0.1%.
        let p = back.inner().value_at_quantile(0.5);
        assert!((25_000..25_512).contains(&p), "{p}");
        let p = back.inner().value_at_quantile(0.7);
        assert!((1_234_567..=1_235_802).contains(&p), "{p}");
    }

    #[test]
    fn refuses_other_layouts_before_allocating() {
        let other = Histogram::<u64>::new_with_bounds(1, u64::MAX / 2, 5).unwrap();
        let mut bytes = Vec::new();
        V2Serializer::new().serialize(&other, &mut bytes).unwrap();
        let err = LatencyHistogram::decode(&bytes).unwrap_err();
        assert!(matches!(err, HdrCodecError::Layout { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "header significant digits = 5: must be 3 (1 us .. 60 s, 3 digits)"
        );
    }

    /// What the library would take or trip on: a count past the layout, a run of empty
    /// buckets of i64::MIN, a varint cut short, a compressed or foreign cookie.
    #[test]
    fn hostile_encodings_are_refused_with_a_reason() {
        let mut h = LatencyHistogram::new();
        h.record_ns(5_000);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(h.encode_base64())
            .unwrap();
        let with_payload = |payload: &[u8]| {
            let mut b = bytes[..V2_HEADER_LEN].to_vec();
            b[4..8].copy_from_slice(&(payload.len() as u32).to_be_bytes());
            b.extend_from_slice(payload);
            b
        };
        let zigzag = |v: i64| {
            let mut out = Vec::new();
            crate::varint::put(&mut out, crate::varint::zigzag(v));
            out
        };
        // Past 60 s: a run to the first position beyond the layout, then a count.
        let last = (0..).find(|p| bucket_value(*p).is_none()).unwrap();
        let mut past = zigzag(-(last as i64));
        past.extend(zigzag(1));
        let err = decode_buckets(&with_payload(&past)).unwrap_err();
        assert!(
            err.to_string().contains("past the layout's last bucket"),
            "{err}"
        );
        // A run of i64::MIN empty buckets (its negation overflows), then a count.
        let mut min = vec![0xff; 8];
        min.push(0xff);
        min.extend(zigzag(1));
        assert!(decode_buckets(&with_payload(&min)).is_err());
        // A varint cut short.
        let err = decode_buckets(&with_payload(&[0x80])).unwrap_err();
        assert!(err.to_string().contains("runs past the payload"), "{err}");
        // Another cookie (V2 with deflate).
        let mut deflated = bytes.clone();
        deflated[0..4].copy_from_slice(&0x1c84_9314u32.to_be_bytes());
        let err = decode_buckets(&deflated).unwrap_err();
        assert!(err.to_string().contains("uncompressed V2"), "{err}");
        assert_eq!(decode_buckets(&bytes).unwrap(), (vec![(5_119, 1)], 1));
    }

    #[test]
    fn every_truncation_is_rejected() {
        let mut h = LatencyHistogram::new();
        h.record_ns(5_000);
        h.record_ns(7_000_000);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(h.encode_base64())
            .unwrap();
        for len in 0..bytes.len() {
            assert!(
                LatencyHistogram::decode(&bytes[..len]).is_err(),
                "len {len}"
            );
            assert!(decode_buckets(&bytes[..len]).is_err(), "len {len}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = LatencyHistogram::decode(&bytes);
            let _ = decode_buckets(&bytes);
        }

        /// The buckets read from the encoding are the decoded histogram's.
        #[test]
        fn buckets_read_from_the_encoding_are_the_histograms(
            values in proptest::collection::vec((0u64..2 * HIGHEST_NS, 1u64..1 << 40), 0..60),
        ) {
            let mut h = LatencyHistogram::new();
            for (v, n) in &values {
                h.record_n_ns(*v, *n);
            }
            let text = h.encode_base64();
            let (buckets, total) = decode_buckets_base64(&text).unwrap();
            let decoded = LatencyHistogram::decode_base64(&text).unwrap();
            prop_assert_eq!(&buckets, &decoded.buckets().collect::<Vec<_>>());
            prop_assert_eq!(total, decoded.len());
        }

        #[test]
        fn add_is_lossless(a in proptest::collection::vec(0u64..HIGHEST_NS, 0..50),
                           b in proptest::collection::vec(0u64..HIGHEST_NS, 0..50)) {
            let (mut ha, mut hb, mut all) =
                (LatencyHistogram::new(), LatencyHistogram::new(), LatencyHistogram::new());
            for v in &a { ha.record_ns(*v); all.record_ns(*v); }
            for v in &b { hb.record_ns(*v); all.record_ns(*v); }
            let ha = LatencyHistogram::decode_base64(&ha.encode_base64()).unwrap();
            let mut merged = ha.clone();
            merged.add(&hb);
            prop_assert_eq!(merged.buckets().collect::<Vec<_>>(), all.buckets().collect::<Vec<_>>());
        }
    }

    /// Positions are HdrHistogram's buckets: every value maps to the position whose value is
    /// the library's highest equivalent of it, positions ascend with values without gaps,
    /// and nothing past 60 s has one.
    #[test]
    fn bucket_positions_are_the_librarys_buckets() {
        let h = LatencyHistogram::new();
        let mut v = 0u64;
        let mut last = None;
        while v <= HIGHEST_NS {
            let p = bucket_position(v);
            assert_eq!(
                bucket_value(p),
                Some(h.inner().highest_equivalent(v)),
                "{v}"
            );
            if let Some(l) = last {
                assert!(p == l || p == l + 1, "{v}: {l} -> {p}");
            }
            last = Some(p);
            v = h.inner().next_non_equivalent(v);
        }
        let end = last.unwrap();
        assert_eq!(bucket_value(end + 1), None);
        assert_eq!(bucket_value(u64::MAX), None);
        assert!(end < 20_000, "{end} positions");
    }
}
