//! The JSON-RPC ids of responses lost to a full ring, carried by the overflow marker so
//! a host can fail exactly those requests instead of waiting for them forever.
//!
//! Kept while events are being lost, then written into the marker: as many as fit in one
//! slot of the ring after the marker's fixed part, in the order they were lost. Whether
//! any id could not be kept is recorded too. Pure data: no atomics, no FFI.

/// Longest id kept, in bytes of raw JSON (`"req-42"` with its quotes, or `42`).
pub(crate) const MAX_ID_LEN: usize = 32;
/// Most ids one marker carries.
pub(crate) const MAX_IDS: usize = 16;
/// Bytes of pending ids: a length byte and the id, for each.
const CAPACITY: usize = MAX_IDS * (1 + MAX_ID_LEN);

/// Ids of lost responses not yet written into a marker. All zeroes is empty.
pub(crate) struct PendingIds {
    bytes: [u8; CAPACITY],
    len: usize,
    count: u8,
    /// A lost response's id was not kept (too long, or no room).
    more: bool,
}

impl PendingIds {
    pub(crate) const fn new() -> Self {
        Self {
            bytes: [0; CAPACITY],
            len: 0,
            count: 0,
            more: false,
        }
    }

    /// Keeps `id` if there is room for it, or notes that one was not kept.
    pub(crate) fn push(&mut self, id: &[u8]) {
        let end = self.len + 1 + id.len();
        if id.len() > MAX_ID_LEN || usize::from(self.count) >= MAX_IDS || end > CAPACITY {
            self.more = true;
            return;
        }
        self.bytes[self.len] = id.len() as u8;
        self.bytes[self.len + 1..end].copy_from_slice(id);
        self.len = end;
        self.count += 1;
    }

    /// Writes `[more][count][len id]...` into `out`, as many ids as fit; returns the bytes
    /// written. Ids that do not fit count as not kept.
    pub(crate) fn encode_into(&self, out: &mut [u8]) -> usize {
        if out.len() < 2 {
            return 0;
        }
        let (mut at, mut count, mut more) = (2, 0u8, self.more);
        let mut records = self.records();
        for id in records.by_ref() {
            let end = at + 1 + id.len();
            if end > out.len() {
                more = true;
                break;
            }
            out[at] = id.len() as u8;
            out[at + 1..end].copy_from_slice(id);
            at = end;
            count += 1;
        }
        out[0] = u8::from(more);
        out[1] = count;
        at
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.count = 0;
        self.more = false;
    }

    fn records(&self) -> Records<'_> {
        Records {
            bytes: &self.bytes[..self.len],
            left: usize::from(self.count),
        }
    }
}

/// Reads back what [`PendingIds::encode_into`] wrote: whether ids were left out, and the
/// ids kept. A short or damaged encoding reads as no ids.
pub(crate) fn decode(encoded: &[u8]) -> (bool, Records<'_>) {
    match encoded {
        [more, count, records @ ..] => (
            *more != 0,
            Records {
                bytes: records,
                left: usize::from(*count),
            },
        ),
        _ => (
            false,
            Records {
                bytes: &[],
                left: 0,
            },
        ),
    }
}

/// The raw ids in an encoding, oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Records<'a> {
    bytes: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let (&len, rest) = self.bytes.split_first()?;
        let id = rest.get(..usize::from(len))?;
        self.bytes = &rest[usize::from(len)..];
        self.left -= 1;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    #[test]
    fn ids_round_trip_in_order() {
        let mut ids = PendingIds::new();
        ids.push(b"1");
        ids.push(br#""req-2""#);
        let mut out = [0u8; 64];
        let len = ids.encode_into(&mut out);
        let (more, records) = decode(&out[..len]);
        assert!(!more);
        assert_eq!(records.collect::<Vec<_>>(), [&b"1"[..], &br#""req-2""#[..]]);
    }

    #[test]
    fn ids_that_do_not_fit_are_flagged_not_cut() {
        let mut ids = PendingIds::new();
        ids.push(&[b'x'; MAX_ID_LEN + 1]);
        for n in 0..MAX_IDS + 1 {
            ids.push(std::format!("{n}").as_bytes());
        }
        let mut out = [0u8; 1024];
        let len = ids.encode_into(&mut out);
        let (more, records) = decode(&out[..len]);
        assert!(more);
        assert_eq!(records.count(), MAX_IDS);

        // A small marker slot keeps the first few and flags the rest.
        let mut small = [0u8; 2 + 2 + 2];
        let len = ids.encode_into(&mut small);
        let (more, records) = decode(&small[..len]);
        assert!(more);
        assert_eq!(records.collect::<Vec<_>>(), [&b"0"[..], &b"1"[..]]);
    }

    #[test]
    fn damaged_encodings_read_as_no_ids() {
        assert_eq!(decode(&[]).1.count(), 0);
        assert_eq!(decode(&[0, 3, 5, b'a']).1.count(), 0);
    }
}

#[cfg(test)]
mod properties {
    extern crate std;
    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(256))]

        /// Whatever ids are pushed and however small the marker, what is decoded is the
        /// first ids pushed, intact and in order, and `more` says whether any is missing.
        #[test]
        fn ids_decode_as_a_prefix_and_more_tells_the_rest(
            ids in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..24),
            room in 2usize..600,
        ) {
            let mut pending = PendingIds::new();
            for id in &ids {
                pending.push(id);
            }
            let mut out = std::vec![0u8; room];
            let len = pending.encode_into(&mut out);
            let (more, records) = decode(&out[..len]);
            let decoded: Vec<&[u8]> = records.collect();
            let kept: Vec<&[u8]> = ids.iter().map(Vec::as_slice).filter(|id| id.len() <= MAX_ID_LEN).collect();
            prop_assert!(decoded.len() <= kept.len());
            prop_assert_eq!(&decoded[..], &kept[..decoded.len()]);
            prop_assert_eq!(more, decoded.len() < ids.len());
        }
    }
}
