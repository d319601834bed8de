//! How each pool's workers are started beyond their command: environment variables, a
//! working directory, and what becomes of their stderr.
//!
//! The kernel knows none of this (both archives skip a pool's unknown members), so the bus
//! applies it in the interposed `execvp`, between fork and exec, where nothing may be
//! allocated. Everything is therefore laid out at `create` in one fixed table: the pools'
//! strings, NUL-terminated and ready for exec, in [`LAUNCH_BYTES`] bytes, and a record per
//! pool pointing into them. The configuration checks refuse a configuration whose strings
//! do not fit ([`launch_bytes`] counts them the same way in both places).

// Without an interposed archive (Apple targets, or no archive at all) the kernel execs its
// workers itself, and only the checks of the settings are used.
#![cfg_attr(not(stdio_bus_interposed), allow(dead_code))]
use crate::limits::{LAUNCH_BYTES, MAX_WORKERS};

/// What becomes of a worker's stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stderr {
    /// The host's stderr, shared as is (the default, and what the kernel does).
    #[default]
    Inherit,
    /// Each line on the host's stderr, whole, prefixed with `[POOL#WORKER] `.
    Tagged,
    /// Discarded (`/dev/null`).
    Null,
}

impl Stderr {
    /// The name in the configuration JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Inherit => "inherit",
            Self::Tagged => "tagged",
            Self::Null => "null",
        }
    }

    /// The mode a name in the configuration JSON stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Inherit, Self::Tagged, Self::Null]
            .into_iter()
            .find(|mode| mode.name() == name)
    }
}

/// Bytes one pool takes in the table: each variable as `NAME=VALUE` and a NUL, the
/// directory and a NUL, and for tagged stderr the pool id (the prefix of its lines).
pub(crate) fn launch_bytes(
    env: impl Iterator<Item = (usize, usize)>,
    cwd: Option<usize>,
    stderr: Stderr,
    id: usize,
) -> usize {
    let vars: usize = env.map(|(name, value)| name + value + 2).sum();
    let dir = cwd.map_or(0, |len| len + 1);
    let tag = if stderr == Stderr::Tagged { id } else { 0 };
    vars + dir + tag
}

/// A span of the table's bytes.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: u16,
    end: u16,
}

/// One pool's record.
#[derive(Clone, Copy, Debug)]
struct PoolLaunch {
    instances: u32,
    /// `NAME=VALUE\0` entries, one after the other.
    env: Span,
    inherit_env: bool,
    /// The directory with its NUL; empty for none.
    cwd: Span,
    stderr: Stderr,
    /// The pool id, for tagged stderr.
    id: Span,
}

/// The launch settings of every pool of one bus, in configuration order.
#[derive(Debug)]
pub(crate) struct LaunchTable {
    bytes: [u8; LAUNCH_BYTES],
    used: usize,
    pools: heapless::Vec<PoolLaunch, MAX_WORKERS>,
    /// Some pool sets something: otherwise a worker starts exactly as the kernel has it.
    any: bool,
    /// Something did not fit (a configuration the checks let through cannot do that).
    overflowed: bool,
}

/// What one worker is started with: borrowed from its [`LaunchTable`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Launch<'a> {
    /// `NAME=VALUE\0` entries.
    pub(crate) env: &'a [u8],
    pub(crate) inherit_env: bool,
    /// The directory with its NUL, if any.
    pub(crate) cwd: Option<&'a [u8]>,
    pub(crate) stderr: Stderr,
    /// The pool id.
    pub(crate) pool: &'a [u8],
}

impl<'a> Launch<'a> {
    /// Whether the environment differs from the host's.
    pub(crate) fn sets_env(&self) -> bool {
        !self.env.is_empty() || !self.inherit_env
    }

    /// Each `NAME=VALUE` entry, its NUL included.
    pub(crate) fn vars(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let env: &'a [u8] = self.env;
        env.split_inclusive(|&b| b == 0)
            .filter(|entry| entry.len() > 1)
    }
}

impl LaunchTable {
    pub(crate) const fn new() -> Self {
        Self {
            bytes: [0; LAUNCH_BYTES],
            used: 0,
            pools: heapless::Vec::new(),
            any: false,
            overflowed: false,
        }
    }

    /// Starts the record of the next pool, with the settings of the kernel's own.
    pub(crate) fn begin_pool(&mut self, instances: u32) {
        let empty = Span {
            start: self.used as u16,
            end: self.used as u16,
        };
        let pool = PoolLaunch {
            instances,
            env: empty,
            inherit_env: true,
            cwd: Span::default(),
            stderr: Stderr::Inherit,
            id: Span::default(),
        };
        if self.pools.push(pool).is_err() {
            self.overflowed = true;
        }
    }

    /// Appends `chars` then `end` (if any) to the bytes; the span written.
    fn append(&mut self, chars: impl Iterator<Item = char>, end: Option<u8>) -> Span {
        let start = self.used;
        let mut buf = [0; 4];
        for c in chars {
            self.put(c.encode_utf8(&mut buf).as_bytes());
        }
        if let Some(end) = end {
            self.put(&[end]);
        }
        Span {
            start: start as u16,
            end: self.used as u16,
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        match self.bytes.get_mut(self.used..self.used + bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.used += bytes.len();
            }
            None => self.overflowed = true,
        }
    }

    /// Adds `NAME=VALUE` to the environment of the pool begun last. Variables must be
    /// added before anything else of the pool, so that its entries stay together.
    pub(crate) fn add_env(
        &mut self,
        name: impl Iterator<Item = char>,
        value: impl Iterator<Item = char>,
    ) {
        self.append(name, Some(b'='));
        self.append(value, Some(0));
        let used = self.used as u16;
        if let Some(pool) = self.pools.last_mut() {
            pool.env.end = used;
            self.any = true;
        }
    }

    /// The host's environment is not passed on to the pool begun last.
    pub(crate) fn replace_env(&mut self) {
        if let Some(pool) = self.pools.last_mut() {
            pool.inherit_env = false;
            self.any = true;
        }
    }

    /// The working directory of the pool begun last.
    pub(crate) fn set_cwd(&mut self, dir: impl Iterator<Item = char>) {
        let span = self.append(dir, Some(0));
        if let Some(pool) = self.pools.last_mut() {
            pool.cwd = span;
            self.any = true;
        }
    }

    /// The stderr mode of the pool begun last, whose id is `id`.
    pub(crate) fn set_stderr(&mut self, stderr: Stderr, id: impl Iterator<Item = char>) {
        let span = match stderr {
            Stderr::Tagged => self.append(id, None),
            _ => Span::default(),
        };
        if let Some(pool) = self.pools.last_mut()
            && stderr != Stderr::Inherit
        {
            pool.stderr = stderr;
            pool.id = span;
            self.any = true;
        }
    }

    /// Whether a pool sets anything the kernel would not do by itself.
    pub(crate) fn is_plain(&self) -> bool {
        !self.any
    }

    /// Whether everything fit.
    pub(crate) fn fits(&self) -> bool {
        !self.overflowed
    }

    /// How worker `worker` is started: the kernel starts every pool's instances in
    /// configuration order, and a restart keeps its worker's id.
    pub(crate) fn for_worker(&self, worker: usize) -> Option<Launch<'_>> {
        let mut first = 0usize;
        let pool = self.pools.iter().find(|pool| {
            first += pool.instances as usize;
            worker < first
        })?;
        let span = |span: Span| self.bytes.get(span.start as usize..span.end as usize);
        Some(Launch {
            env: span(pool.env).unwrap_or_default(),
            inherit_env: pool.inherit_env,
            cwd: span(pool.cwd).filter(|dir| !dir.is_empty()),
            stderr: pool.stderr,
            pool: span(pool.id).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_finds_its_pool() {
        let mut table = LaunchTable::new();
        table.begin_pool(2);
        table.begin_pool(1);
        table.add_env("A".chars(), "1".chars());
        table.add_env("B".chars(), "x=y".chars());
        table.replace_env();
        table.set_cwd("/tmp".chars());
        table.set_stderr(Stderr::Tagged, "p".chars());
        assert!(table.fits() && !table.is_plain());
        let first = table.for_worker(1).unwrap();
        assert!(!first.sets_env() && first.cwd.is_none());
        let second = table.for_worker(2).unwrap();
        assert_eq!(
            second.vars().collect::<Vec<_>>(),
            [&b"A=1\0"[..], b"B=x=y\0"]
        );
        assert_eq!(second.cwd, Some(&b"/tmp\0"[..]));
        assert_eq!((second.stderr, second.pool), (Stderr::Tagged, &b"p"[..]));
        assert!(table.for_worker(3).is_none());
    }

    #[test]
    fn what_does_not_fit_is_noticed() {
        let mut table = LaunchTable::new();
        table.begin_pool(1);
        let long = core::iter::repeat_n('x', LAUNCH_BYTES);
        table.add_env("A".chars(), long);
        assert!(!table.fits());
    }
}
