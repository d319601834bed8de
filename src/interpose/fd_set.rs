//! A set of descriptor numbers below the kernel's limit, one bit each.

/// The kernel serves descriptors below this number only: its event loop and transport keep
/// fixed tables of 1024 entries and ignore or refuse anything above.
pub(crate) const KERNEL_FD_LIMIT: usize = 1024;

const WORDS: usize = KERNEL_FD_LIMIT / 64;

/// Descriptor numbers in `0..KERNEL_FD_LIMIT`.
#[derive(Clone, Debug, Default)]
pub(crate) struct FdSet([u64; WORDS]);

impl FdSet {
    pub(crate) const fn new() -> Self {
        Self([0; WORDS])
    }

    /// Adds `fd`; returns false if it is out of range.
    pub(crate) fn insert(&mut self, fd: i32) -> bool {
        match Self::bit(fd) {
            Some((word, mask)) => {
                self.0[word] |= mask;
                true
            }
            None => false,
        }
    }

    /// Removes `fd`; returns whether it was in the set.
    pub(crate) fn remove(&mut self, fd: i32) -> bool {
        match Self::bit(fd) {
            Some((word, mask)) => {
                let present = self.0[word] & mask != 0;
                self.0[word] &= !mask;
                present
            }
            None => false,
        }
    }

    #[cfg(test)]
    fn contains(&self, fd: i32) -> bool {
        Self::bit(fd).is_some_and(|(word, mask)| self.0[word] & mask != 0)
    }

    fn bit(fd: i32) -> Option<(usize, u64)> {
        let fd = usize::try_from(fd)
            .ok()
            .filter(|&fd| fd < KERNEL_FD_LIMIT)?;
        Some((fd / 64, 1 << (fd % 64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_each_number_once_and_nothing_out_of_range() {
        let mut set = FdSet::new();
        assert!(set.insert(0) && set.insert(63) && set.insert(64) && set.insert(1023));
        assert!(!set.insert(1024) && !set.insert(-1));
        assert!(set.contains(63) && set.contains(64) && !set.contains(65));
        assert!(set.remove(64));
        assert!(!set.remove(64), "a second removal finds nothing");
        assert!(!set.contains(64) && set.contains(63));
        assert!(!set.remove(1024) && !set.contains(-1));
    }
}
