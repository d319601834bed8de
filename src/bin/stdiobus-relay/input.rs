//! Lines from stdin.
//!
//! Stdin is read only when `poll` has said it is readable, one `read` each time, so a read
//! never blocks and stdin keeps the flags the client gave it (a terminal it shares with a
//! shell is not made non-blocking behind the shell's back).

use std::io;

/// Bytes asked for per `read` at least; more when a long line has left room.
const READ_SIZE: usize = 64 << 10;

/// What `next` hands out.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A whole line, without its newline.
    Whole(&'a [u8]),
    /// A line longer than the limit, of at least this many bytes: dropped whole.
    TooLong(usize),
}

pub struct Input {
    fd: libc::c_int,
    /// Bytes read and not handed out yet, from `start` on.
    buf: Vec<u8>,
    start: usize,
    /// Up to here (from `start`), the buffer holds no newline.
    scanned: usize,
    max_line: usize,
    /// Bytes of the over-long line being dropped, until its newline.
    dropping: Option<usize>,
    ended: bool,
}

impl Input {
    pub fn new(fd: libc::c_int, max_line: usize) -> Self {
        Self {
            fd,
            buf: Vec::with_capacity(READ_SIZE),
            start: 0,
            scanned: 0,
            max_line,
            dropping: None,
            ended: false,
        }
    }

    /// Whether stdin has ended (and every line was handed out).
    pub fn ended(&self) -> bool {
        self.ended && self.start == self.buf.len()
    }

    /// Whether stdin has ended, lines still waiting or not.
    pub fn closed(&self) -> bool {
        self.ended
    }

    /// Reads once from stdin; call when `poll` says it is readable.
    pub fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        self.buf.reserve(READ_SIZE);
        let room = self.buf.capacity() - len;
        // SAFETY: reading at most `room` bytes into the vector's spare capacity, whose
        // length is then set to what was read.
        let read = unsafe { libc::read(self.fd, self.buf.as_mut_ptr().add(len).cast(), room) };
        match read {
            0 => self.ended = true,
            n if n > 0 => {
                // SAFETY: `read` initialised these `n` bytes.
                unsafe { self.buf.set_len(len + n as usize) };
            }
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    self.ended = true;
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// The next line read, if one is whole (or stdin ended after its last bytes).
    pub fn next(&mut self) -> Option<Line<'_>> {
        loop {
            let pending = &self.buf[self.start..];
            let newline = memchr(&pending[self.scanned..]).map(|at| self.scanned + at);
            let Some(end) = newline else {
                self.scanned = pending.len();
                if pending.len() > self.max_line || (self.dropping.is_some() && !pending.is_empty())
                {
                    // Too long already: keep none of it, only its length.
                    *self.dropping.get_or_insert(0) += pending.len();
                    self.start = self.buf.len();
                    self.scanned = 0;
                    continue;
                }
                if self.ended && !pending.is_empty() {
                    // The last line, without a newline.
                    let (start, end) = (self.start, self.buf.len());
                    self.start = end;
                    self.scanned = 0;
                    return Some(self.line(start, end));
                }
                if self.ended
                    && let Some(len) = self.dropping.take()
                {
                    return Some(Line::TooLong(len));
                }
                return None;
            };
            let (start, stop) = (self.start, self.start + end);
            self.start = stop + 1;
            self.scanned = 0;
            return Some(self.line(start, stop));
        }
    }

    /// The line in `buf[start..end]`, or what ends an over-long one.
    fn line(&mut self, start: usize, end: usize) -> Line<'_> {
        if let Some(dropped) = self.dropping.take() {
            return Line::TooLong(dropped + (end - start));
        }
        if end - start > self.max_line {
            return Line::TooLong(end - start);
        }
        let line = &self.buf[start..end];
        Line::Whole(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines out of `input`, fed through a pipe in `chunks`.
    fn lines(max_line: usize, chunks: &[&[u8]]) -> Vec<Result<Vec<u8>, usize>> {
        let mut fds = [0; 2];
        // SAFETY: a pipe for the test.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let mut input = Input::new(fds[0], max_line);
        let mut out = Vec::new();
        for chunk in chunks {
            // SAFETY: writing a small chunk into our own pipe.
            unsafe { libc::write(fds[1], chunk.as_ptr().cast(), chunk.len()) };
            input.fill().unwrap();
            while let Some(line) = input.next() {
                out.push(match line {
                    Line::Whole(bytes) => Ok(bytes.to_vec()),
                    Line::TooLong(len) => Err(len),
                });
            }
        }
        // SAFETY: closing our own pipe's write end.
        unsafe { libc::close(fds[1]) };
        input.fill().unwrap();
        while let Some(line) = input.next() {
            out.push(match line {
                Line::Whole(bytes) => Ok(bytes.to_vec()),
                Line::TooLong(len) => Err(len),
            });
        }
        assert!(input.ended());
        // SAFETY: closing our own pipe's read end.
        unsafe { libc::close(fds[0]) };
        out
    }

    #[test]
    fn lines_come_whole_whatever_the_reads() {
        let got = lines(100, &[b"{\"a\":1}\n{\"b\"", b":2}\r\n\n", b"last"]);
        let want: Vec<Result<Vec<u8>, usize>> = vec![
            Ok(b"{\"a\":1}".to_vec()),
            Ok(b"{\"b\":2}".to_vec()),
            Ok(Vec::new()),
            Ok(b"last".to_vec()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_line_over_the_limit_is_dropped_and_measured() {
        let long = vec![b'x'; 25];
        let got = lines(10, &[&long[..12], &long[12..], b"\nok\n"]);
        assert_eq!(got, vec![Err(25), Ok(b"ok".to_vec())]);
        let got = lines(10, &[&long, b"\nok\n", &long]);
        assert_eq!(got, vec![Err(25), Ok(b"ok".to_vec()), Err(25)]);
    }
}
