//! [`ConfigBuffer`]: pools and limits written as the kernel's JSON, checked first, in a
//! fixed buffer.

use core::ffi::CStr;
use core::fmt;

use super::pool::LIMIT_NAMES;
use super::{
    Config, ConfigError, Limits, Pool, PoolField, PoolIdText, Source, Stderr, Unsupported,
};
use crate::json;
use crate::launch::launch_bytes;
use crate::limits::LAUNCH_BYTES;

/// A fixed-capacity buffer the configuration JSON is written into: `N` bytes, including
/// the terminating NUL the kernel needs. `new` is `const`, so the buffer can be a `static`
/// and the whole configuration lives without a heap.
pub struct ConfigBuffer<const N: usize> {
    buf: [u8; N],
    /// Length of the last successful write, without the NUL; 0 otherwise.
    len: usize,
}

impl<const N: usize> ConfigBuffer<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// Checks `pools` (see [`ConfigError`]), then writes the kernel's JSON. Nothing partial
    /// is ever returned: on error the buffer's content is unspecified and [`Self::as_str`]
    /// is empty; if the JSON does not fit, the error says exactly how many bytes it needs.
    pub fn write(
        &mut self,
        pools: &[Pool<'_>],
        limits: &Limits,
    ) -> Result<Config<'_>, ConfigError> {
        self.len = 0;
        check_pools(pools)?;
        let mut writer = json::Writer::new(&mut self.buf);
        emit(&mut writer, pools, limits);
        let len = writer.len();
        let needed = len.saturating_add(1);
        let too_small = ConfigError::BufferTooSmall {
            needed,
            capacity: N,
        };
        let Some(nul) = self.buf.get_mut(len) else {
            return Err(too_small);
        };
        *nul = 0;
        self.len = len;
        // The JSON holds no NUL (the writer escapes every control character), so the
        // first NUL is the one just written; the error branch cannot be taken.
        let json = CStr::from_bytes_until_nul(&self.buf).map_err(|_| too_small)?;
        Ok(Config {
            source: Source::Json(json),
        })
    }

    /// The JSON last written, without the NUL; empty before the first successful write and
    /// after a failed one.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl<const N: usize> Default for ConfigBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for ConfigBuffer<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuffer")
            .field("capacity", &N)
            .field("json", &self.as_str())
            .finish()
    }
}

/// The first control character the kernel cannot carry: all but NUL (refused on its own,
/// as [`ConfigError::NulByte`]) and `\n` `\r` `\t`, the only ones it decodes.
pub(super) fn unsupported_control(s: &str) -> Option<char> {
    s.bytes()
        .find(|b| matches!(b, 0x01..=0x08 | 0x0b | 0x0c | 0x0e..=0x1f))
        .map(char::from)
}

/// A string the kernel passes to exec: no NUL, then nothing it cannot carry.
fn check_text(
    text: &str,
    pool: usize,
    id: PoolIdText,
    field: PoolField,
) -> Result<(), ConfigError> {
    if text.as_bytes().contains(&0) {
        return Err(ConfigError::NulByte { pool, id, field });
    }
    if let Some(c) = unsupported_control(text) {
        return Err(ConfigError::UnsupportedCharacter {
            pool,
            id,
            field,
            found: Unsupported::Control(c),
        });
    }
    Ok(())
}

/// Everything the kernel checks (and what it would silently cut at or change), in pool
/// order; within a pool: id, command, arguments, instances, and for each string a NUL
/// before any other character.
pub(super) fn check_pools(pools: &[Pool<'_>]) -> Result<(), ConfigError> {
    if pools.is_empty() {
        return Err(ConfigError::NoPools);
    }
    let mut workers = 0u64;
    let mut launch = 0usize;
    for (index, pool) in pools.iter().enumerate() {
        if pool.id.is_empty() {
            return Err(ConfigError::EmptyId { pool: index });
        }
        let id = PoolIdText::new(pool.id);
        check_text(pool.id, index, id, PoolField::Id)?;
        if let Some(first) = pools
            .iter()
            .take(index)
            .position(|earlier| earlier.id == pool.id)
        {
            return Err(ConfigError::DuplicateId {
                first,
                second: index,
                id,
            });
        }
        if pool.command.is_empty() {
            return Err(ConfigError::EmptyCommand { pool: index, id });
        }
        check_text(pool.command, index, id, PoolField::Command)?;
        for (arg, text) in pool.args.iter().enumerate() {
            check_text(text, index, id, PoolField::Arg(arg))?;
        }
        if pool.instances == 0 {
            return Err(ConfigError::ZeroInstances { pool: index, id });
        }
        workers += u64::from(pool.instances);
        check_worker_total(workers)?;
        check_launch(pool, index, id)?;
        launch += launch_bytes(
            pool.env
                .iter()
                .map(|(name, value)| (name.len(), value.len())),
            pool.cwd.map(str::len),
            pool.stderr,
            pool.id.len(),
        );
        check_launch_total(launch)?;
    }
    Ok(())
}

/// A pool's launch settings: what exec cannot take.
fn check_launch(pool: &Pool<'_>, index: usize, id: PoolIdText) -> Result<(), ConfigError> {
    for (var, (name, value)) in pool.env.iter().enumerate() {
        if name.is_empty() || name.contains('=') {
            return Err(ConfigError::InvalidEnvName {
                pool: index,
                id,
                var,
            });
        }
        if name.contains('\0') || value.contains('\0') {
            return Err(ConfigError::NulByte {
                pool: index,
                id,
                field: PoolField::EnvVar(var),
            });
        }
        if pool.env[..var].iter().any(|(earlier, _)| earlier == name) {
            return Err(ConfigError::DuplicateEnvName {
                pool: index,
                id,
                var,
            });
        }
    }
    match pool.cwd {
        Some("") => Err(ConfigError::EmptyCwd { pool: index, id }),
        Some(dir) if dir.contains('\0') => Err(ConfigError::NulByte {
            pool: index,
            id,
            field: PoolField::Cwd,
        }),
        _ => Ok(()),
    }
}

/// The bus keeps every pool's launch settings in [`LAUNCH_BYTES`]; refuse more.
pub(super) fn check_launch_total(needed: usize) -> Result<(), ConfigError> {
    if needed > LAUNCH_BYTES {
        return Err(ConfigError::LaunchTooLarge {
            needed,
            capacity: LAUNCH_BYTES,
        });
    }
    Ok(())
}

/// A bus tracks every worker process it starts (to stop and reap it); refuse more.
pub(super) fn check_worker_total(total: u64) -> Result<(), ConfigError> {
    let max = crate::limits::MAX_WORKERS;
    if total > max as u64 {
        return Err(ConfigError::TooManyWorkers { total, max });
    }
    Ok(())
}

/// The launch settings, which the kernel skips and the bus reads: each left out when it
/// is the default.
fn emit_launch(w: &mut json::Writer<'_>, pool: &Pool<'_>) {
    if !pool.env.is_empty() {
        w.raw(b",\"env\":{");
        for (i, (name, value)) in pool.env.iter().enumerate() {
            if i > 0 {
                w.raw(b",");
            }
            w.string(name);
            w.raw(b":");
            w.string(value);
        }
        w.raw(b"}");
    }
    if !pool.inherit_env {
        w.raw(b",\"inherit_env\":false");
    }
    if let Some(dir) = pool.cwd {
        w.raw(b",\"cwd\":");
        w.string(dir);
    }
    if pool.stderr != Stderr::Inherit {
        w.raw(b",\"stderr\":");
        w.string(pool.stderr.name());
    }
}

/// The kernel's format: `args` left out when empty, `limits` left out when all defaults.
fn emit(w: &mut json::Writer<'_>, pools: &[Pool<'_>], limits: &Limits) {
    w.raw(b"{\"pools\":[");
    for (index, pool) in pools.iter().enumerate() {
        if index > 0 {
            w.raw(b",");
        }
        w.raw(b"{\"id\":");
        w.string(pool.id);
        w.raw(b",\"command\":");
        w.string(pool.command);
        if !pool.args.is_empty() {
            w.raw(b",\"args\":[");
            for (i, arg) in pool.args.iter().enumerate() {
                if i > 0 {
                    w.raw(b",");
                }
                w.string(arg);
            }
            w.raw(b"]");
        }
        w.raw(b",\"instances\":");
        w.u32(pool.instances);
        emit_launch(w, pool);
        w.raw(b"}");
    }
    w.raw(b"]");
    let mut any = false;
    for (name, value) in LIMIT_NAMES.iter().zip(limits.values()) {
        if let Some(value) = value {
            w.raw(if any { b"," } else { b",\"limits\":{" });
            any = true;
            w.string(name);
            w.raw(b":");
            w.u32(value);
        }
    }
    if any {
        w.raw(b"}");
    }
    w.raw(b"}");
}
