//! Worker output the ring has no room for yet, held back in the kernel's own read buffer.
//!
//! The transport reads a worker's output into its connection's buffer and delivers every
//! complete line there before it reads again, so one read of short lines can bring more
//! events than the ring has slots, and the ring would lose them. The bus hands the kernel
//! only the lines the ring has room for ([`Room`]). The rest stays where the read put it,
//! past the end of what the kernel counts as its buffer: the transport writes that buffer
//! only by reading into it and by moving what is left of a line to its front, both within
//! what it counts, and it grows the buffer only when it is full, which it is not then
//! (machine code of `transport_event_handler`, both archives). At the kernel's next read
//! of that worker, the held bytes move to where it reads, and the pipe is read again only
//! once all of them went to the kernel.
//!
//! The pipe may be empty meanwhile, so nothing would make the kernel read: its
//! `epoll_wait` reports the worker readable once the ring has room (see `epoll`), and an
//! event descriptor keeps the event loop's descriptor readable for hosts that wait on it.
//!
//! While output is held the worker's pipe fills and the worker waits: back-pressure that
//! reaches the worker, and no line is lost.
//!
//! The same place holds the start of a line not finished yet, so that the kernel does not
//! scan it again after every read (see [`hand_over`]); that waits for the pipe, not for the
//! ring. No system calls here.

use crate::ring::Room;

/// Bytes of one worker's output that a read put in the kernel's buffer and the kernel was
/// not given yet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Held {
    /// Where they are: in the kernel's buffer, past what it counts.
    at: *mut u8,
    len: usize,
    /// Where the kernel's next read of this worker reads into if its buffer is as the bus
    /// left it: the buffer's start when the kernel was given whole lines, else where it
    /// read last.
    resume_at: *mut u8,
    /// Bytes of an unfinished line the kernel holds at `resume_at`'s buffer start then.
    kernel_len: usize,
    /// They are only the start of a line not finished yet: nothing to deliver, and the
    /// pipe is read again behind them.
    partial: bool,
}

// SAFETY: the pointers are followed only inside a kernel call of the bus that holds them,
// on the thread making that call.
unsafe impl Send for Held {}

/// Of `data`, which a read just put in the kernel's buffer behind the `kernel_len` bytes of
/// a line it already holds: how many bytes the kernel gets now, and what is held back.
///
/// The kernel gets whole lines while `room` admits them. An unfinished line at the end is
/// held too while `can_wait`, that is while the kernel's buffer has room for more behind
/// it: the transport scans its whole buffer for a newline after every read, so a long line
/// read piece by piece would be scanned again for each piece. Held, it reaches the kernel
/// once it is finished or fills the buffer, which then grows.
pub(crate) fn hand_over(
    data: &mut [u8],
    kernel_len: usize,
    room: &mut Room,
    can_wait: bool,
) -> (usize, Option<Held>) {
    let (mut start, mut line_len) = (0, kernel_len);
    if room.is_unbounded() {
        start = crate::memchr::rfind(b'\n', data).map_or(0, |at| at + 1);
    } else {
        while let Some(at) = crate::memchr::find(b'\n', &data[start..]) {
            if !room.admits(line_len + at) {
                return (start, Some(hold(data, start, kernel_len, false)));
            }
            start += at + 1;
            line_len = 0;
        }
    }
    if start < data.len() && can_wait {
        return (start, Some(hold(data, start, kernel_len, true)));
    }
    (data.len(), None)
}

/// The bytes of `data` from `start` on, held: `data` was read behind the `kernel_len` bytes
/// the kernel holds, and it gets the bytes before `start`, whole lines if any.
fn hold(data: &mut [u8], start: usize, kernel_len: usize, partial: bool) -> Held {
    let base = data.as_mut_ptr();
    Held {
        at: base.wrapping_add(start),
        len: data.len() - start,
        resume_at: if start > 0 {
            base.wrapping_sub(kernel_len)
        } else {
            base
        },
        kernel_len: if start > 0 { 0 } else { kernel_len },
        partial,
    }
}

impl Held {
    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of an unfinished line the kernel holds when it reads these.
    pub(crate) fn kernel_len(&self) -> usize {
        self.kernel_len
    }

    /// Whether they are only the start of an unfinished line, which waits for its end
    /// rather than for room in the ring.
    pub(crate) fn is_partial(&self) -> bool {
        self.partial
    }

    /// The length of the first line these bytes end (or of all of them), counting what
    /// the kernel holds of it: what the ring needs room for before the kernel reads them.
    ///
    /// # Safety
    ///
    /// The kernel's connection for this worker is open: its buffer has not been freed.
    pub(crate) unsafe fn first_line_len(&self) -> usize {
        // SAFETY: the held bytes are in the open connection's buffer (the caller's
        // contract), which nothing writes while the bus runs.
        let bytes = unsafe { core::slice::from_raw_parts(self.at, self.len) };
        self.kernel_len + crate::memchr::find(b'\n', bytes).unwrap_or(self.len)
    }

    /// Moves the held bytes to `buf`, where the kernel reads up to `room` bytes now, and
    /// returns their length; `None` when the kernel reads elsewhere than where the bus
    /// left its buffer (never seen), and the bytes are lost.
    ///
    /// # Safety
    ///
    /// `buf` is valid for writes of `room` bytes, and the kernel's connection for this
    /// worker is open.
    pub(crate) unsafe fn restore(self, buf: *mut u8, room: usize) -> Option<usize> {
        if buf != self.resume_at || self.len > room {
            return None;
        }
        if self.at != buf {
            // SAFETY: both ranges are in the connection's buffer (the caller's contract
            // and `hand_over`): the bytes past `buf` up to `room` belong to it. They may
            // overlap.
            unsafe { core::ptr::copy(self.at, buf, self.len) };
        }
        Some(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_line_waits_while_the_buffer_has_room() {
        // The kernel's buffer: 3 bytes it holds of a line, then what a read brought.
        let mut buffer = *b"abcdef\nghi";
        let (held_by_kernel, read) = buffer.split_at_mut(3);
        let base = read.as_mut_ptr();
        let mut room = Room::UNBOUNDED;
        let (handed, held) = hand_over(read, held_by_kernel.len(), &mut room, true);
        assert_eq!(handed, 4, "the finished line goes");
        let held = held.expect("the start of the next line waits");
        assert!(held.is_partial());
        assert_eq!((held.len(), held.kernel_len()), (3, 0));
        // The kernel consumed its line: its next read starts at the buffer's start.
        assert_eq!(held.resume_at, base.wrapping_sub(3));

        let mut read = *b"no newline yet";
        let (handed, held) = hand_over(&mut read, 5, &mut room, true);
        let held = held.expect("all of it waits");
        assert_eq!((handed, held.len(), held.kernel_len()), (0, 14, 5));
        assert_eq!(
            held.resume_at,
            read.as_mut_ptr(),
            "where the kernel reads again"
        );

        // A full buffer goes to the kernel, which grows it.
        let (handed, held) = hand_over(&mut read, 5, &mut room, false);
        assert_eq!((handed, held.is_none()), (14, true));
    }
}
