//! A worker's output as the kernel's transport reads it, line by line: lines longer than
//! the kernel takes are dropped here, whole, instead of making the kernel close the
//! worker's output.
//!
//! The transport buffers a worker's output until a newline, and a line that does not end
//! within `max_input_buffer` bytes is a framing error: the kernel closes that worker's
//! stdout, and everything the worker writes afterwards is lost (observed). So the bus
//! watches each read: bytes of a line that would not fit are taken out of what the
//! kernel reads, up to the line's newline; the part the kernel already holds is ended with
//! a newline of the bus's, and that line is not delivered. The host hears of each such line
//! instead (`Event::LineTooLong`). No system calls.

/// What the bus knows of one worker's output stream.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lines {
    /// Bytes of the current line handed to the kernel, which holds them in its buffer.
    pub(crate) len: usize,
    /// The current line is too long: its bytes are being taken out up to its newline.
    skipping: bool,
    /// The next line the kernel delivers from this worker is the start of a line too long.
    pub(crate) drop_next: bool,
    /// Lines dropped and not reported yet.
    pub(crate) dropped: u32,
}

impl Lines {
    /// How many bytes the kernel may read now, of the `wanted` it asks for, so that its
    /// buffer (the current line and what it reads) never exceeds `limit`.
    pub(crate) fn room(&self, wanted: usize, limit: usize) -> usize {
        wanted.min(limit.saturating_sub(self.len).max(1))
    }

    /// Takes out of `data`, just read for the kernel, every byte of a line longer than
    /// `limit` (its newline included); returns how many bytes the kernel keeps, moved to
    /// the front of `data`.
    pub(crate) fn filter(&mut self, data: &mut [u8], limit: usize) -> usize {
        if !self.skipping && self.len + data.len() < limit {
            // The common case: no line here can be too long. Only the length of the line
            // left open matters, and one backward search finds it.
            self.len = match last_newline(data) {
                Some(at) => data.len() - at - 1,
                None => self.len + data.len(),
            };
            return data.len();
        }
        let (mut read, mut kept) = (0, 0);
        while read < data.len() {
            let newline = data[read..].iter().position(|&b| b == b'\n');
            let end = newline.map_or(data.len(), |at| read + at);
            if self.skipping {
                if newline.is_some() {
                    self.skipping = false;
                }
                read = end + 1;
                continue;
            }
            let content = end - read;
            if self.len + content > limit.saturating_sub(1) {
                // Too long, newline or not: drop it. What the kernel holds of it becomes a
                // line of its own, delivered to nobody.
                if self.len > 0 {
                    data[kept] = b'\n';
                    kept += 1;
                    self.drop_next = true;
                }
                self.dropped = self.dropped.saturating_add(1);
                self.len = 0;
                self.skipping = newline.is_none();
                read = end + 1;
                continue;
            }
            let take = (end + 1).min(data.len()) - read;
            if kept != read {
                data.copy_within(read..read + take, kept);
            }
            kept += take;
            self.len = if newline.is_some() {
                0
            } else {
                self.len + take
            };
            read += take;
        }
        kept
    }
}

/// Where the first newline in `data` is: the C library's `memchr` on Linux, vectorised.
#[cfg(target_os = "linux")]
pub(super) fn next_newline(data: &[u8]) -> Option<usize> {
    // SAFETY: `data` is valid for reads of its length; memchr only reads it.
    let found = unsafe { libc::memchr(data.as_ptr().cast(), i32::from(b'\n'), data.len()) };
    (!found.is_null()).then(|| found as usize - data.as_ptr() as usize)
}

/// Where the first newline in `data` is.
#[cfg(not(target_os = "linux"))]
pub(super) fn next_newline(data: &[u8]) -> Option<usize> {
    data.iter().position(|&byte| byte == b'\n')
}

/// Where the last newline in `data` is: the C library's `memrchr` on Linux, which is
/// vectorised, as a worker's output can come a megabyte at a time.
#[cfg(target_os = "linux")]
fn last_newline(data: &[u8]) -> Option<usize> {
    // SAFETY: `data` is valid for reads of its length; memrchr only reads it.
    let found = unsafe { libc::memrchr(data.as_ptr().cast(), i32::from(b'\n'), data.len()) };
    (!found.is_null()).then(|| found as usize - data.as_ptr() as usize)
}

/// Where the last newline in `data` is (no reads are interposed here: not on a hot path).
#[cfg(not(target_os = "linux"))]
fn last_newline(data: &[u8]) -> Option<usize> {
    data.iter().rposition(|&byte| byte == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` through a fresh stream with `limit`; returns what the kernel gets
    /// and how many lines were dropped.
    fn feed(chunks: &[&[u8]], limit: usize) -> (Vec<u8>, u32, bool) {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for chunk in chunks {
            let mut data = chunk.to_vec();
            let kept = lines.filter(&mut data, limit);
            out.extend_from_slice(&data[..kept]);
        }
        (out, lines.dropped, lines.drop_next)
    }

    #[test]
    fn lines_that_fit_pass_unchanged_in_any_split() {
        let text = b"one\ntwo\nthree\n";
        for cut in 0..text.len() {
            let (out, dropped, _) = feed(&[&text[..cut], &text[cut..]], 6);
            assert_eq!((out.as_slice(), dropped), (&text[..], 0), "cut at {cut}");
        }
    }

    #[test]
    fn a_line_too_long_is_dropped_whole_and_the_rest_kept() {
        // Limit 6: five bytes and a newline fit, six do not.
        assert_eq!(
            feed(&[b"12345\n123456\nok\n"], 6),
            (b"12345\nok\n".to_vec(), 1, false)
        );
        // Split so that the kernel holds the first part: it gets a newline and a flag.
        let (out, dropped, drop_next) = feed(&[b"abc", b"defghij\nok\n"], 6);
        assert_eq!(
            (out.as_slice(), dropped, drop_next),
            (&b"abc\nok\n"[..], 1, true)
        );
        // The newline comes much later, over several reads.
        let (out, dropped, _) = feed(&[b"xxxxxxxx", b"xxxxxxxxxx", b"xx\nok\n"], 6);
        assert_eq!((out.as_slice(), dropped), (&b"ok\n"[..], 1));
    }

    #[test]
    fn the_kernel_is_never_asked_to_hold_more_than_the_limit() {
        let mut lines = Lines::default();
        assert_eq!(lines.room(4096, 100), 100);
        let mut data = *b"0123456789";
        lines.filter(&mut data, 100);
        assert_eq!(lines.room(4096, 100), 90);
        assert_eq!(lines.room(10, 100), 10);
    }
}
