//! A configuration file, checked the way [`Config::from_json`](super::Config::from_json)
//! checks text, right before the kernel reads it.
//!
//! The kernel opens the path with `fopen` and reads it whole: a FIFO blocks `create`
//! forever, and a directory, a device or a bad document fail with only a line on stderr.
//! So the bus looks first: the path must name a regular file, whose text is then mapped
//! into memory (no copy, no heap) and put through the same checks as `from_json`.

use core::ffi::CStr;
use core::ptr;

use super::{ConfigError, PoolIdText};
use crate::launch::LaunchTable;

/// Refuses `path` unless it names a regular file holding a configuration the kernel takes;
/// calls `pool` with each pool's id and instance count of one it takes, and sets
/// `input_limit` to its `max_input_buffer`, and fills `launch` with its pools' launch
/// settings.
pub(crate) fn check(
    path: &CStr,
    pool: impl FnMut(PoolIdText, u32),
    input_limit: &mut Option<u32>,
    launch: &mut LaunchTable,
) -> Result<(), ConfigError> {
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: `path` is NUL-terminated; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), flags) };
    if fd < 0 {
        return Err(ConfigError::FileUnreadable {
            errno: crate::os::errno(),
        });
    }
    let checked = check_open(fd, pool, input_limit, launch);
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    checked
}

fn check_open(
    fd: libc::c_int,
    pool: impl FnMut(PoolIdText, u32),
    input_limit: &mut Option<u32>,
    launch: &mut LaunchTable,
) -> Result<(), ConfigError> {
    // SAFETY: a zeroed `stat` is a valid out-parameter; `fd` is open.
    let mut status: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd, &mut status) } != 0 {
        return Err(ConfigError::FileUnreadable {
            errno: crate::os::errno(),
        });
    }
    let kind = match status.st_mode & libc::S_IFMT {
        libc::S_IFREG => None,
        libc::S_IFDIR => Some("a directory"),
        libc::S_IFIFO => Some("a FIFO"),
        libc::S_IFCHR | libc::S_IFBLK => Some("a device"),
        libc::S_IFSOCK => Some("a socket"),
        _ => Some("not a regular file"),
    };
    if let Some(kind) = kind {
        return Err(ConfigError::NotAFile { kind });
    }
    let len = usize::try_from(status.st_size).unwrap_or(usize::MAX);
    if len == 0 {
        return super::check_text_document(&[]);
    }
    // SAFETY: mapping `len` bytes of a regular file read-only and private; the mapping is
    // removed below and not used after.
    let map = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            fd,
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return Err(ConfigError::FileUnreadable {
            errno: crate::os::errno(),
        });
    }
    // SAFETY: the mapping holds `len` readable bytes until `munmap`. A file truncated
    // meanwhile would fault; the kernel reads the same file an instant later anyway.
    let text = unsafe { core::slice::from_raw_parts(map.cast::<u8>(), len) };
    let checked = super::check_text_document(text);
    if checked.is_ok()
        && let Ok(text) = core::str::from_utf8(text)
    {
        *input_limit = super::layout(text, pool, launch);
    }
    // SAFETY: the mapping made above, removed once; `text` is not used after.
    unsafe { libc::munmap(map, len) };
    checked
}
