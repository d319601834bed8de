//! Which worker a key belongs to, in a table whose storage the caller provides (no heap),
//! found by hash with linear probing: the sessions (key: pool and `sessionId`) and the
//! requests in flight (key: the raw `id`).

use crate::limits::{MAX_REQUEST_ID, MAX_SESSION_ID};

/// Room for one entry of a table the bus keeps in the caller's storage: a
/// [`SessionSlot`] or a [`RequestSlot`].
#[derive(Clone, Copy)]
pub struct Slot<const KEY: usize> {
    /// Zero while the slot is free.
    hash: u64,
    pool: u16,
    worker: u16,
    /// The worker's start count when the key was bound to it: a restarted worker is a new
    /// process, which knows nothing of what the old one was given.
    generation: u32,
    len: u8,
    id: [u8; KEY],
}

/// Room for one session in a session table: give a bus a slice of these with
/// [`Bus::set_session_table`](crate::Bus::set_session_table), as many as sessions it
/// should follow at once.
///
/// ```
/// use stdiobus_embed::SessionSlot;
/// let mut sessions = [SessionSlot::EMPTY; 256];
/// # let _ = &mut sessions;
/// ```
pub type SessionSlot = Slot<MAX_SESSION_ID>;

/// Room for one request in flight: give a bus a slice of these with
/// [`Bus::set_request_table`](crate::Bus::set_request_table), as many as requests it may
/// have unanswered at once.
pub type RequestSlot = Slot<MAX_REQUEST_ID>;

impl<const KEY: usize> Slot<KEY> {
    /// A free slot.
    pub const EMPTY: Self = Self {
        hash: 0,
        pool: 0,
        worker: 0,
        generation: 0,
        len: 0,
        id: [0; KEY],
    };

    fn holds(&self, hash: u64, pool: u16, id: &[u8]) -> bool {
        self.hash == hash && self.pool == pool && &self.id[..usize::from(self.len)] == id
    }
}

impl<const KEY: usize> core::fmt::Debug for Slot<KEY> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Slot")
            .field("free", &(self.hash == 0))
            .finish_non_exhaustive()
    }
}

/// A session id decoded into a fixed buffer.
pub(crate) struct SessionKey {
    bytes: [u8; MAX_SESSION_ID],
    len: usize,
}

impl SessionKey {
    /// The decoded id, or its decoded length when longer than [`MAX_SESSION_ID`].
    pub(crate) fn decode(chars: impl Iterator<Item = char>) -> Result<Self, usize> {
        let mut key = Self {
            bytes: [0; MAX_SESSION_ID],
            len: 0,
        };
        let mut overflow = 0;
        for c in chars {
            let end = key.len + c.len_utf8();
            match key.bytes.get_mut(key.len..end) {
                Some(dst) if overflow == 0 => {
                    c.encode_utf8(dst);
                    key.len = end;
                }
                _ => overflow += c.len_utf8(),
            }
        }
        if overflow > 0 {
            return Err(key.len + overflow);
        }
        Ok(key)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Where a key's messages went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Binding {
    pub(crate) worker: usize,
    pub(crate) generation: u32,
}

/// The caller's slots, as a table.
pub(crate) struct Table<'r, const KEY: usize> {
    slots: &'r mut [Slot<KEY>],
    used: usize,
}

/// The sessions, by pool and `sessionId`.
pub(crate) type Sessions<'r> = Table<'r, MAX_SESSION_ID>;
/// The requests in flight, by raw `id` (pool 0).
pub(crate) type Requests<'r> = Table<'r, MAX_REQUEST_ID>;

impl<'r, const KEY: usize> Table<'r, KEY> {
    pub(crate) fn new(slots: &'r mut [Slot<KEY>]) -> Self {
        slots.fill(Slot::EMPTY);
        Self { slots, used: 0 }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.used
    }

    /// The key in slot `at`, with its binding, if the slot is taken.
    pub(crate) fn entry(&self, at: usize) -> Option<(&[u8], Binding)> {
        let slot = self.slots.get(at).filter(|slot| slot.hash != 0)?;
        let binding = Binding {
            worker: usize::from(slot.worker),
            generation: slot.generation,
        };
        Some((&slot.id[..usize::from(slot.len)], binding))
    }

    /// The worker `id` of `pool` is bound to.
    pub(crate) fn get(&self, pool: usize, id: &[u8]) -> Option<Binding> {
        let at = self.find(pool as u16, id).ok()?;
        let slot = &self.slots[at];
        Some(Binding {
            worker: usize::from(slot.worker),
            generation: slot.generation,
        })
    }

    /// Binds `id` (at most `KEY` bytes) of `pool` to `to`, replacing any binding; `false`
    /// when the table is full.
    pub(crate) fn bind(&mut self, pool: usize, id: &[u8], to: Binding) -> bool {
        let (hash, pool) = (hash(pool as u16, id), pool as u16);
        let at = match self.find(pool, id) {
            Ok(at) => at,
            Err(Some(free)) => {
                self.used += 1;
                free
            }
            Err(None) => return false,
        };
        let slot = &mut self.slots[at];
        *slot = Slot {
            hash,
            pool,
            worker: to.worker as u16,
            generation: to.generation,
            len: id.len() as u8,
            id: slot.id,
        };
        slot.id[..id.len()].copy_from_slice(id);
        true
    }

    /// Forgets `id` of `pool`; whether it was there.
    pub(crate) fn remove(&mut self, pool: usize, id: &[u8]) -> bool {
        let Ok(mut hole) = self.find(pool as u16, id) else {
            return false;
        };
        // Backward-shift deletion: later entries of the same probe run move up, so that no
        // lookup stops early at the hole.
        let len = self.slots.len();
        let mut at = hole;
        for _ in 1..len {
            at = (at + 1) % len;
            let slot = self.slots[at];
            if slot.hash == 0 {
                break;
            }
            let home = (slot.hash % len as u64) as usize;
            let distance = |from: usize, to: usize| (to + len - from) % len;
            if distance(home, at) >= distance(hole, at) {
                self.slots[hole] = slot;
                hole = at;
            }
        }
        self.slots[hole] = Slot::EMPTY;
        self.used -= 1;
        true
    }

    /// The slot holding `id` of `pool`, or else the free slot it would take (`None`: full).
    fn find(&self, pool: u16, id: &[u8]) -> Result<usize, Option<usize>> {
        let len = self.slots.len();
        if len == 0 {
            return Err(None);
        }
        let hash = hash(pool, id);
        let mut at = (hash % len as u64) as usize;
        for _ in 0..len {
            let slot = &self.slots[at];
            if slot.hash == 0 {
                return Err(Some(at));
            }
            if slot.holds(hash, pool, id) {
                return Ok(at);
            }
            at = (at + 1) % len;
        }
        Err(None)
    }
}

/// FNV-1a over the pool and the id; never zero, which marks a free slot.
fn hash(pool: u16, id: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in pool.to_le_bytes().iter().chain(id) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(worker: usize) -> Binding {
        Binding {
            worker,
            generation: 0,
        }
    }

    #[test]
    fn binds_finds_and_forgets_until_full() {
        let mut slots = [SessionSlot::EMPTY; 8];
        let mut sessions = Sessions::new(&mut slots);
        for n in 0..8u8 {
            assert!(sessions.bind(0, &[b's', n], binding(usize::from(n))));
        }
        assert!(
            !sessions.bind(0, b"one more", binding(0)),
            "a full table refuses"
        );
        assert!(
            sessions.bind(0, &[b's', 3], binding(7)),
            "rebinding needs no room"
        );
        for n in 0..8u8 {
            let expected = if n == 3 { 7 } else { usize::from(n) };
            assert_eq!(sessions.get(0, &[b's', n]), Some(binding(expected)));
        }
        assert_eq!(sessions.get(1, b"s\x00"), None, "pools are apart");
        for n in (0..8u8).step_by(2) {
            assert!(sessions.remove(0, &[b's', n]));
        }
        assert!(!sessions.remove(0, b"s\x00"));
        for n in (1..8u8).step_by(2) {
            let expected = if n == 3 { 7 } else { usize::from(n) };
            assert_eq!(sessions.get(0, &[b's', n]), Some(binding(expected)));
        }
        assert_eq!(sessions.len(), 4);
    }

    #[test]
    fn removal_keeps_every_probe_run_reachable() {
        // Many keys in a small table collide; remove them in a scrambled order.
        let mut slots = [SessionSlot::EMPTY; 16];
        let mut sessions = Sessions::new(&mut slots);
        let keys: Vec<[u8; 2]> = (0..16u8).map(|n| [n.wrapping_mul(7), n]).collect();
        for (n, key) in keys.iter().enumerate() {
            assert!(sessions.bind(0, key, binding(n)));
        }
        for (step, &victim) in [5usize, 0, 15, 9, 3, 12, 1].iter().enumerate() {
            assert!(sessions.remove(0, &keys[victim]));
            for (n, key) in keys.iter().enumerate() {
                let removed = [5usize, 0, 15, 9, 3, 12, 1][..=step].contains(&n);
                assert_eq!(
                    sessions.get(0, key).is_some(),
                    !removed,
                    "key {n} after {step}"
                );
            }
        }
    }

    #[test]
    fn long_ids_are_measured_not_cut() {
        let long = "é".repeat(40);
        assert_eq!(SessionKey::decode(long.chars()).err(), Some(80));
        let fits = "x".repeat(MAX_SESSION_ID);
        assert_eq!(
            SessionKey::decode(fits.chars()).unwrap().as_bytes(),
            fits.as_bytes()
        );
    }
}
