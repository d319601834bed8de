//! The configuration's pools, as ranges of worker ids: the kernel numbers workers in
//! configuration order, pool after pool.

use crate::config::PoolIdText;
use crate::limits::MAX_WORKERS;

/// One pool: its id and the workers `first..first + count`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolRange {
    pub(crate) id: PoolIdText,
    pub(crate) first: u16,
    pub(crate) count: u16,
    /// Where the next round-robin search starts, relative to `first`.
    pub(crate) next: u16,
}

/// Every pool of one configuration.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    list: heapless::Vec<PoolRange, MAX_WORKERS>,
    workers: usize,
}

impl Pools {
    pub(crate) const fn new() -> Self {
        Self {
            list: heapless::Vec::new(),
            workers: 0,
        }
    }

    /// Adds the next pool of the configuration; ignored past the workers a bus tracks,
    /// which `create` refuses anyway.
    pub(crate) fn push(&mut self, id: PoolIdText, instances: u32) {
        let count = instances as usize;
        let range = PoolRange {
            id,
            first: self.workers as u16,
            count: count.min(MAX_WORKERS) as u16,
            next: 0,
        };
        if self.workers + count <= MAX_WORKERS && self.list.push(range).is_ok() {
            self.workers += count;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// The pool whose id is `name` (ids longer than [`PoolIdText::CAPACITY`] bytes cannot
    /// be named: their stored text is cut short).
    pub(crate) fn find(&self, name: impl Iterator<Item = char> + Clone) -> Option<usize> {
        self.list
            .iter()
            .position(|pool| !pool.id.is_truncated() && pool.id.as_str().chars().eq(name.clone()))
    }

    /// The worker ids of the pool whose id is `name`.
    pub(crate) fn workers_of(&self, name: &str) -> Option<core::ops::Range<usize>> {
        let pool = self.list.get(self.find(name.chars())?)?;
        let first = usize::from(pool.first);
        Some(first..first + usize::from(pool.count))
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut PoolRange> {
        self.list.get_mut(index)
    }
}
