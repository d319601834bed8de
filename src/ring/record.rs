//! How one event is laid out in the ring: a fixed header followed by its payload.
//!
//! A record starts at the beginning of a slot and covers as many whole, contiguous slots as
//! its header and payload need, so the payload can always be borrowed as one `&[u8]`.
//! Pure data layout: no atomics, no FFI. What a record means is the event's (`crate::event`).

use crate::event::{Kind, LOSS_LEN};

/// Bytes taken by the header at the start of every record.
pub(crate) const HEADER_LEN: usize = 12;
/// The smallest slot that holds a whole overflow marker, so a marker always fits in one.
pub(crate) const MIN_SLOT_SIZE: usize = HEADER_LEN + LOSS_LEN;

/// The fixed part of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    /// The callback's integer: error code, log level, worker or client id.
    pub(crate) value: i32,
    /// Payload length in bytes.
    pub(crate) len: u32,
}

impl Header {
    pub(crate) const fn encode(self) -> [u8; HEADER_LEN] {
        let len = self.len.to_ne_bytes();
        let value = self.value.to_ne_bytes();
        [
            len[0],
            len[1],
            len[2],
            len[3],
            value[0],
            value[1],
            value[2],
            value[3],
            self.kind as u8,
            0,
            0,
            0,
        ]
    }

    pub(crate) const fn decode(bytes: &[u8; HEADER_LEN]) -> Self {
        Self {
            len: u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            value: i32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            kind: Kind::from_byte(bytes[8]),
        }
    }
}

/// Slots a record with `payload_len` bytes of payload occupies.
pub(crate) const fn slots_for(payload_len: usize, slot_size: usize) -> usize {
    (HEADER_LEN + payload_len).div_ceil(slot_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_every_kind() {
        for kind in [
            Kind::Padding,
            Kind::Message,
            Kind::Error,
            Kind::Log,
            Kind::Worker,
            Kind::ClientConnected,
            Kind::ClientDisconnected,
            Kind::Overflow,
            Kind::Exited,
            Kind::SessionMoved,
            Kind::Unanswered,
            Kind::LineTooLong,
            Kind::Restart,
        ] {
            let header = Header {
                kind,
                value: -15,
                len: u32::MAX,
            };
            assert_eq!(Header::decode(&header.encode()), header);
        }
    }

    #[test]
    fn slot_count_covers_header_and_payload() {
        assert_eq!(slots_for(0, 64), 1);
        assert_eq!(slots_for(64 - HEADER_LEN, 64), 1);
        assert_eq!(slots_for(64 - HEADER_LEN + 1, 64), 2);
        assert_eq!(
            slots_for(1 << 20, 4096),
            (HEADER_LEN + (1 << 20)).div_ceil(4096)
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn kind() -> impl Strategy<Value = Kind> {
        (0u8..13).prop_map(Kind::from_byte)
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(256))]

        #[test]
        fn headers_round_trip(kind in kind(), value in any::<i32>(), len in any::<u32>()) {
            let header = Header { kind, value, len };
            prop_assert_eq!(Header::decode(&header.encode()), header);
        }

        #[test]
        fn a_record_covers_exactly_the_slots_it_needs(len in 0usize..100_000, slot in 28usize..5000) {
            let slots = slots_for(len, slot);
            prop_assert!(slots * slot >= HEADER_LEN + len);
            prop_assert!((slots - 1) * slot < HEADER_LEN + len);
        }
    }
}
