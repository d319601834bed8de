//! The lines too long being taken out of the workers' output, followed for their `id`
//! (see `jsonrpc::response_id`), so that the host is told which request such a line
//! answered.

use crate::jsonrpc::response_id::{End, START_LEN, Start};

/// How many lines too long are followed for their `id` at once, across the workers: more
/// at once are still dropped and reported, without an id.
const TRACKED: usize = 4;

/// The lines too long being taken out of the workers' output, followed for their `id`:
/// few at once, so that every worker does not carry the room for one.
#[derive(Debug)]
pub(crate) struct LineIds {
    tracked: [Option<Tracked>; TRACKED],
}

impl Default for LineIds {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Copy, Debug)]
struct Tracked {
    worker: usize,
    start: Start,
    end: End,
}

impl LineIds {
    pub(crate) const fn new() -> Self {
        Self {
            tracked: [None; TRACKED],
        }
    }

    /// Starts following `worker`'s line too long, whose first bytes are `before` (held
    /// by the kernel) and then `first`.
    pub(crate) fn begin(&mut self, worker: usize, before: &[u8], first: &[u8]) {
        let mut start = [0u8; START_LEN];
        let from_before = before.len().min(START_LEN);
        start[..from_before].copy_from_slice(&before[..from_before]);
        let from_first = first.len().min(START_LEN - from_before);
        start[from_before..from_before + from_first].copy_from_slice(&first[..from_first]);
        let mut end = End::default();
        end.push(before);
        end.push(first);
        let tracked = Tracked {
            worker,
            start: Start::read(&start[..from_before + from_first]),
            end,
        };
        let slot = self
            .find(worker)
            .or_else(|| self.tracked.iter().position(Option::is_none));
        if let Some(slot) = slot {
            self.tracked[slot] = Some(tracked);
        }
    }

    /// More of `worker`'s line too long went by.
    pub(crate) fn push(&mut self, worker: usize, more: &[u8]) {
        if let Some(slot) = self.find(worker)
            && let Some(tracked) = self.tracked[slot].as_mut()
        {
            tracked.end.push(more);
        }
    }

    /// `worker`'s line too long ended: `done` gets its `id`, if known, and the line is
    /// no longer followed.
    pub(crate) fn finish(&mut self, worker: usize, done: impl FnOnce(Option<&[u8]>)) {
        let tracked = self.find(worker).and_then(|slot| self.tracked[slot].take());
        done(tracked.as_ref().and_then(|t| t.start.id(t.end.as_slice())));
    }

    fn find(&self, worker: usize) -> Option<usize> {
        self.tracked
            .iter()
            .position(|t| t.is_some_and(|t| t.worker == worker))
    }
}
