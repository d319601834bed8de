//! Finding one byte in a run of bytes: the C library's vectorised `memchr` and `memrchr` on
//! Linux, which outrun `core`'s word-at-a-time search on the long messages and worker
//! output the bus looks through (a 1 MiB message is checked for NUL bytes on every send).

/// Where the first `byte` in `data` is.
#[cfg(target_os = "linux")]
pub(crate) fn find(byte: u8, data: &[u8]) -> Option<usize> {
    // SAFETY: `data` is valid for reads of its length; memchr only reads it.
    let found = unsafe { libc::memchr(data.as_ptr().cast(), i32::from(byte), data.len()) };
    (!found.is_null()).then(|| found as usize - data.as_ptr() as usize)
}

/// Where the last `byte` in `data` is.
#[cfg(target_os = "linux")]
pub(crate) fn rfind(byte: u8, data: &[u8]) -> Option<usize> {
    // SAFETY: `data` is valid for reads of its length; memrchr only reads it.
    let found = unsafe { libc::memrchr(data.as_ptr().cast(), i32::from(byte), data.len()) };
    (!found.is_null()).then(|| found as usize - data.as_ptr() as usize)
}

/// Where the first `byte` in `data` is.
#[cfg(not(target_os = "linux"))]
pub(crate) fn find(byte: u8, data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == byte)
}

/// Where the last `byte` in `data` is.
#[cfg(not(target_os = "linux"))]
pub(crate) fn rfind(byte: u8, data: &[u8]) -> Option<usize> {
    data.iter().rposition(|&b| b == byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_and_the_last() {
        assert_eq!(find(b'\n', b"ab\ncd\n"), Some(2));
        assert_eq!(rfind(b'\n', b"ab\ncd\n"), Some(5));
        assert_eq!(find(b'\n', b"abc"), None);
        assert_eq!(rfind(0, b""), None);
    }
}
