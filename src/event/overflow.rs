//! What the ring stores in place of events it had no room for: how many were lost, and the
//! ids of the responses among them.

use super::lost_ids;

/// Payload of an overflow marker: lost events, then lost bytes, both `u64`, then the lost
/// responses' ids (`lost_ids`).
pub(crate) const LOSS_LEN: usize = 16;

/// Where events were lost, as the consumer reads it in place of them: how many, and the
/// JSON-RPC ids of the responses among them, so their requests can be failed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow<'a> {
    loss: Loss,
    more_ids: bool,
    ids: lost_ids::Records<'a>,
}

impl<'a> Overflow<'a> {
    pub(crate) fn decode(payload: &'a [u8]) -> Self {
        let (events, bytes) = decode_loss(payload);
        let (more_ids, ids) = lost_ids::decode(payload.get(LOSS_LEN..).unwrap_or(&[]));
        Self {
            loss: Loss { events, bytes },
            more_ids,
            ids,
        }
    }

    /// How many events, and how many payload bytes, were lost here.
    pub const fn loss(&self) -> Loss {
        self.loss
    }

    /// The raw JSON `id`s (`42`, `"req-42"`) of the responses lost here, oldest first:
    /// as many as fit in one slot of the ring, at most 16, each at most 32 bytes long.
    pub fn lost_ids(&self) -> impl Iterator<Item = crate::Bytes<'a>> + use<'a> {
        self.ids.map(crate::Bytes::new)
    }

    /// Whether more responses were lost here than [`Overflow::lost_ids`] lists: if so,
    /// the host cannot tell which of its pending requests they answered.
    pub const fn more_ids_lost(&self) -> bool {
        self.more_ids
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Overflow<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Overflow({}, more ids: {})", self.loss, self.more_ids);
    }
}

/// Events and bytes that could not be stored in the ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Loss {
    /// Events dropped.
    pub events: u64,
    /// Payload bytes of the dropped events.
    pub bytes: u64,
}

/// The payload of an overflow marker.
pub(crate) const fn encode_loss(events: u64, bytes: u64) -> [u8; LOSS_LEN] {
    let e = events.to_ne_bytes();
    let b = bytes.to_ne_bytes();
    [
        e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], b[0], b[1], b[2], b[3], b[4], b[5], b[6],
        b[7],
    ]
}

/// Reads back what [`encode_loss`] wrote; a short payload reads as zero.
pub(crate) fn decode_loss(payload: &[u8]) -> (u64, u64) {
    let word = |at: usize| {
        payload
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_ne_bytes)
    };
    (word(0), word(8))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn loss_round_trips() {
        assert_eq!(decode_loss(&encode_loss(3, 1 << 40)), (3, 1 << 40));
        assert_eq!(decode_loss(&[]), (0, 0));
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(256))]

        #[test]
        fn losses_round_trip(events in any::<u64>(), bytes in any::<u64>()) {
            prop_assert_eq!(decode_loss(&encode_loss(events, bytes)), (events, bytes));
        }
    }
}
