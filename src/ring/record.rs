//! How one event is laid out in the ring: a fixed header followed by its payload.
//!
//! A record starts at the beginning of a slot and covers as many whole, contiguous slots as
//! its header and payload need, so the payload can always be borrowed as one `&[u8]`.
//! Pure data layout: no atomics, no FFI.

/// Bytes taken by the header at the start of every record.
pub(crate) const HEADER_LEN: usize = 12;
/// Payload of an overflow marker: lost events, then lost bytes, both `u64`.
pub(crate) const LOSS_LEN: usize = 16;
/// The smallest slot that holds a whole overflow marker, so a marker always fits in one.
pub(crate) const MIN_SLOT_SIZE: usize = HEADER_LEN + LOSS_LEN;

/// What a record holds. Stored as one byte in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// Filler up to the end of the storage: the next record starts at slot 0.
    Padding = 0,
    Message = 1,
    Error = 2,
    Log = 3,
    Worker = 4,
    ClientConnected = 5,
    ClientDisconnected = 6,
    Overflow = 7,
    /// A worker process was reaped; the payload is its wait status, or empty if unknown.
    Exited = 8,
    /// A session left a worker that is gone; the value is the new worker, the payload the
    /// old one (`i32`, native order) and then the session id.
    SessionMoved = 9,
    /// A request the bus handed to a worker whose process ended before answering it; the
    /// value is the worker, the payload the request's raw id.
    Unanswered = 10,
    /// A worker line longer than the kernel takes was dropped; the value is the worker,
    /// the payload the limit (`u64`, native order).
    LineTooLong = 11,
}

impl Kind {
    const fn from_byte(byte: u8) -> Self {
        match byte {
            1 => Self::Message,
            2 => Self::Error,
            3 => Self::Log,
            4 => Self::Worker,
            5 => Self::ClientConnected,
            6 => Self::ClientDisconnected,
            7 => Self::Overflow,
            8 => Self::Exited,
            9 => Self::SessionMoved,
            10 => Self::Unanswered,
            11 => Self::LineTooLong,
            // Only this crate writes headers; anything else is treated as filler.
            _ => Self::Padding,
        }
    }
}

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

    #[test]
    fn loss_round_trips() {
        assert_eq!(decode_loss(&encode_loss(3, 1 << 40)), (3, 1 << 40));
        assert_eq!(decode_loss(&[]), (0, 0));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn kind() -> impl Strategy<Value = Kind> {
        (0u8..8).prop_map(Kind::from_byte)
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(256))]

        #[test]
        fn headers_round_trip(kind in kind(), value in any::<i32>(), len in any::<u32>()) {
            let header = Header { kind, value, len };
            prop_assert_eq!(Header::decode(&header.encode()), header);
        }

        #[test]
        fn losses_round_trip(events in any::<u64>(), bytes in any::<u64>()) {
            prop_assert_eq!(decode_loss(&encode_loss(events, bytes)), (events, bytes));
        }

        #[test]
        fn a_record_covers_exactly_the_slots_it_needs(len in 0usize..100_000, slot in 28usize..5000) {
            let slots = slots_for(len, slot);
            prop_assert!(slots * slot >= HEADER_LEN + len);
            prop_assert!((slots - 1) * slot < HEADER_LEN + len);
        }
    }
}
