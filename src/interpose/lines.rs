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
//! instead (`Event::LineTooLong`), with the `id` of the response the line was when its
//! start or end shows it (`line_id`). No system calls.

use super::line_id::LineIds;

/// What the bus knows of one worker's output stream.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lines {
    /// Bytes of the current line handed to the kernel, which holds them in its buffer.
    pub(crate) len: usize,
    /// The current line is too long: its bytes are being taken out up to its newline.
    skipping: bool,
    /// The next line the kernel delivers from this worker is the start of a line too long.
    pub(crate) drop_next: bool,
}

impl Lines {
    /// How many bytes the kernel may read now, of the `wanted` it asks for, so that its
    /// buffer (the current line and what it reads) never exceeds `limit`.
    pub(crate) fn room(&self, wanted: usize, limit: usize) -> usize {
        wanted.min(limit.saturating_sub(self.len).max(1))
    }

    /// Takes out of `data`, just read for the kernel behind `held` (the [`Self::len`]
    /// bytes of the current line the kernel holds), every byte of a line longer than
    /// `limit` (its newline included); returns how many bytes the kernel keeps, moved to
    /// the front of `data`. `dropped` is called once for each such line, when its end has
    /// been read, with the `id` of the response it was if its start or end shows it
    /// (followed in `ids` as `worker`'s).
    pub(crate) fn filter(
        &mut self,
        data: &mut [u8],
        limit: usize,
        held: &[u8],
        (ids, worker): (&mut LineIds, usize),
        dropped: &mut impl FnMut(Option<&[u8]>),
    ) -> usize {
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
            let newline = next_newline(&data[read..]);
            let end = newline.map_or(data.len(), |at| read + at);
            if self.skipping {
                ids.push(worker, &data[read..end]);
                if newline.is_some() {
                    self.skipping = false;
                    ids.finish(worker, &mut *dropped);
                }
                read = end + 1;
                continue;
            }
            let content = end - read;
            if self.len + content > limit.saturating_sub(1) {
                // Too long, newline or not: drop it. What the kernel holds of it becomes a
                // line of its own, delivered to nobody.
                let before = if self.len > 0 { held } else { &[][..] };
                ids.begin(worker, before, &data[read..end]);
                if self.len > 0 {
                    data[kept] = b'\n';
                    kept += 1;
                    self.drop_next = true;
                }
                self.len = 0;
                self.skipping = newline.is_none();
                if newline.is_some() {
                    ids.finish(worker, &mut *dropped);
                }
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

    /// `worker`'s output ended: a line being taken out ends with it.
    pub(crate) fn end_of_output(
        &mut self,
        (ids, worker): (&mut LineIds, usize),
        dropped: &mut impl FnMut(Option<&[u8]>),
    ) {
        if core::mem::take(&mut self.skipping) {
            ids.finish(worker, dropped);
        }
    }
}

/// Where the first newline in `data` is.
pub(super) fn next_newline(data: &[u8]) -> Option<usize> {
    crate::memchr::find(b'\n', data)
}

/// Where the last newline in `data` is.
pub(super) fn last_newline(data: &[u8]) -> Option<usize> {
    crate::memchr::rfind(b'\n', data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` through a fresh stream with `limit`; returns what the kernel gets,
    /// how many lines were dropped and whether the next line delivered is to be dropped.
    fn feed(chunks: &[&[u8]], limit: usize) -> (Vec<u8>, u32, bool) {
        let (out, ids, drop_next) = feed_ids(chunks, limit);
        (out, ids.len() as u32, drop_next)
    }

    /// [`feed`], with the id each dropped line was reported with.
    fn feed_ids(chunks: &[&[u8]], limit: usize) -> (Vec<u8>, Vec<Option<Vec<u8>>>, bool) {
        let mut lines = Lines::default();
        let mut tracked = LineIds::default();
        let mut out: Vec<u8> = Vec::new();
        let mut ids = Vec::new();
        for chunk in chunks {
            let mut data = chunk.to_vec();
            // What the kernel holds of the current line: the end of what it got.
            let held = out[out.len() - lines.len..].to_vec();
            let kept = lines.filter(&mut data, limit, &held, (&mut tracked, 0), &mut |id| {
                ids.push(id.map(<[u8]>::to_vec))
            });
            out.extend_from_slice(&data[..kept]);
        }
        (out, ids, lines.drop_next)
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
    fn a_dropped_line_is_reported_with_its_id_wherever_it_was_split() {
        let line =
            br#"{"jsonrpc":"2.0","id":7,"result":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
        let last = br#"{"result":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","id":"a"}"#;
        for (text, id) in [(&line[..], &b"7"[..]), (&last[..], &br#""a""#[..])] {
            let mut all = b"ok\n".to_vec();
            all.extend_from_slice(text);
            all.extend_from_slice(b"\nok\n");
            for cut in 1..all.len() {
                let (out, ids, _) = feed_ids(&[&all[..cut], &all[cut..]], 40);
                let out: Vec<&[u8]> = out
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .collect();
                assert_eq!(ids, [Some(id.to_vec())], "cut at {cut}");
                assert_eq!(out.first(), Some(&&b"ok"[..]), "cut at {cut}");
                assert_eq!(out.last(), Some(&&b"ok"[..]), "cut at {cut}");
            }
        }
    }

    #[test]
    fn the_end_of_output_ends_a_line_being_dropped() {
        let mut lines = Lines::default();
        let mut tracked = LineIds::default();
        let mut ids = Vec::new();
        let mut data = br#"{"id":1,"result":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"#.to_vec();
        let mut note = |id: Option<&[u8]>| ids.push(id.map(<[u8]>::to_vec));
        let kept = lines.filter(&mut data, 20, b"", (&mut tracked, 3), &mut note);
        assert_eq!(kept, 0);
        lines.end_of_output((&mut tracked, 3), &mut note);
        lines.end_of_output((&mut tracked, 3), &mut note);
        assert_eq!(ids, [Some(b"1".to_vec())]);
    }

    #[test]
    fn the_kernel_is_never_asked_to_hold_more_than_the_limit() {
        let mut lines = Lines::default();
        assert_eq!(lines.room(4096, 100), 100);
        let mut data = *b"0123456789";
        lines.filter(
            &mut data,
            100,
            b"",
            (&mut LineIds::default(), 0),
            &mut |_| {},
        );
        assert_eq!(lines.room(4096, 100), 90);
        assert_eq!(lines.room(10, 100), 10);
    }
}
