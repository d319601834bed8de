//! Large messages and the workers' stdin pipes.
//!
//! `ingest` hands a message to a worker with one non-blocking `write` to its stdin pipe
//! and does not check for a short write: a message longer than the room left in the pipe
//! is cut, and the rest of it silently dropped (observed). The kernel's `fork` (see
//! `interpose`) makes each worker's pipe as large as the system allows and records it;
//! before handing over a message that a pipe cannot take atomically (more than `PIPE_BUF`
//! bytes), the bus checks here that the pipe of the worker it goes to has room for it, or
//! that the host's send buffer can keep what the pipe cannot take yet ([`Backlog`]).

use cty::c_int;

use super::Backlog;
use crate::Error;

/// A worker's stdin pipe that the kernel may write a message to: its process has not been
/// reaped, and the pipe's size is known.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StdinPipe {
    /// The kernel's end of it.
    pub(crate) fd: c_int,
    /// Bytes it holds.
    pub(crate) capacity: usize,
}

/// The longest message every worker's stdin pipe, or the send buffer, can hold, if the
/// pipes are known.
pub(crate) fn max_message_len(
    pipes: impl Iterator<Item = StdinPipe>,
    backlog: &Backlog,
) -> Option<usize> {
    let pipe = pipes.map(|pipe| pipe.capacity - 1).min()?;
    Some(pipe.max(backlog.capacity().saturating_sub(1)))
}

/// Refuses a message of `len` bytes that the pipe of `worker` (its id and the start
/// generation of its process) could not take whole right now, and that the backlog could
/// not keep either.
pub(crate) fn check_room(
    (id, generation): (usize, u32),
    pipe: Option<StdinPipe>,
    len: usize,
    backlog: &Backlog,
) -> Result<(), Error> {
    // The kernel writes the message and then a newline.
    let needed = len + 1;
    if backlog.holds(id, generation) {
        // It goes behind what is kept, or waits: never beside it, into the pipe.
        let room = backlog.room();
        return if needed <= room {
            Ok(())
        } else {
            Err(Error::PipeFull { needed, room })
        };
    }
    if needed <= libc::PIPE_BUF {
        return Ok(()); // atomic: written whole or refused by the kernel
    }
    // Kept whole in the worst case: the pipe may take nothing of it.
    let keepable = backlog.is_empty() && needed <= backlog.capacity();
    if let Some(pipe) = pipe {
        let capacity = pipe.capacity;
        if needed > capacity.max(backlog.capacity()) {
            return Err(Error::TooLarge {
                len,
                max: capacity.max(backlog.capacity()) - 1,
            });
        }
        if keepable {
            return Ok(());
        }
        if needed > capacity {
            // Only the send buffer can take it, and it is busy with another worker's.
            return Err(Error::PipeFull { needed, room: 0 });
        }
        let mut queued: libc::c_int = 0;
        // SAFETY: `stdin` is an open pipe fd of the live bus; FIONREAD writes an int.
        if unsafe { libc::ioctl(pipe.fd, libc::FIONREAD, &mut queued) } == 0 {
            let room = guaranteed_room(capacity, queued.max(0) as usize);
            if needed > room {
                return Err(Error::PipeFull { needed, room });
            }
        }
    }
    Ok(())
}

/// Bytes a pipe of `capacity` is sure to take in one write while it holds `queued`.
///
/// A pipe is made of pages, and a write starts a new page for whatever does not fit in the
/// last one, so queued data can occupy up to twice its size in pages (lines just over half
/// a page long, one to a page), plus the partly read first page and partly filled last
/// one. An empty pipe has every page free.
fn guaranteed_room(capacity: usize, queued: usize) -> usize {
    const PAGE: usize = 4096;
    if queued == 0 {
        capacity
    } else {
        capacity.saturating_sub(2 * queued + 2 * PAGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_counted_in_whole_pages_worst_case() {
        assert_eq!(guaranteed_room(1 << 20, 0), 1 << 20);
        assert_eq!(guaranteed_room(1 << 20, 1), (1 << 20) - 2 - 8192);
        assert_eq!(guaranteed_room(65536, 40000), 0);
    }
}
