//! The descriptors the kernel makes and closes: each made close-on-exec, numbered below
//! 1024 and recorded as the kernel's; each close checked against that record (module
//! invariants 2 and 3).

use cty::{c_int, c_uint};
use libc::{sockaddr, socklen_t};

use super::children::Output;
use super::fd_set::KERNEL_FD_LIMIT;
use super::resources;
use crate::os::set_errno;
use crate::supervise::Life;

/// Gives `fd` a number from 3 to 1023 (invariant 3), closing the original if it moves.
/// A call that made no descriptor for want of one (`fd` -1) is noted as a shortage too.
pub(super) fn low_fd(fd: c_int) -> c_int {
    if fd < 0 {
        note_shortage();
        return fd;
    }
    if (3..KERNEL_FD_LIMIT as c_int).contains(&fd) {
        return fd;
    }
    // SAFETY: `fd` is open and ours; F_DUPFD_CLOEXEC takes the lowest free number >= 3.
    let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    // SAFETY: `fd` was just created by the wrapped call and is ours to close.
    unsafe { libc::close(fd) };
    if moved < KERNEL_FD_LIMIT as c_int {
        return moved;
    }
    if moved >= 0 {
        // SAFETY: as above, for the copy.
        unsafe { libc::close(moved) };
    }
    set_errno(libc::EMFILE);
    note_shortage();
    -1
}

/// Notes for the bus that a call of the kernel's failed for want of a descriptor (the
/// process's limit, the system's, or none below 1024), if errno says so: the bus reports
/// [`Error::NoLowDescriptor`](crate::Error::NoLowDescriptor) rather than the kernel's
/// generic code.
pub(super) fn note_shortage() {
    let errno = crate::os::errno();
    if (errno == libc::EMFILE || errno == libc::ENFILE)
        && let Some(resources) = resources()
    {
        resources.out_of_low_fds = true;
    }
}

/// Takes a descriptor the kernel just created into its set.
fn own(fd: c_int) -> c_int {
    let fd = low_fd(fd);
    if fd >= 0
        && let Some(resources) = resources()
    {
        resources.owned.insert(fd);
    }
    fd
}

#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "close"))]
extern "C" fn close(fd: c_int) -> c_int {
    let Some(resources) = resources() else {
        // SAFETY: forwarded as the kernel made it (invariant 1).
        return unsafe { libc::close(fd) };
    };
    // The process manager, reaping a worker whose connection is kept open, closes the
    // number the transport still reads: it stays open for the replacement.
    if let Some(child) = resources
        .children
        .iter_mut()
        .find(|c| c.output == Output::Parked && c.stdout == fd && c.pm_stdout == fd)
    {
        child.pm_stdout = -1;
        return 0;
    }
    if !resources.owned.remove(fd) {
        set_errno(libc::EBADF);
        return -1;
    }
    if let Some(child) = resources.children.iter_mut().find(|c| c.pm_stdout == fd) {
        child.pm_stdout = -1;
    }
    // The transport closes a worker's stdout at end of output: from now on the kernel may
    // reap that worker without losing what it wrote.
    let mut lost = None;
    if let Some(child) = resources.children.iter_mut().find(|c| c.stdout == fd) {
        child.stdout = -1;
        resources.supervision.exits_seen |= child.life != Life::Running;
        // The transport freed the buffer the held output was in (a shutdown that did
        // not wait for the workers to end).
        lost = child.held.take();
    }
    if let Some(held) = lost {
        resources.count_lost(held.len());
    }
    if let Some(child) = resources.children.iter_mut().find(|c| c.stdin == fd) {
        child.stdin = -1;
    }
    if fd == resources.epoll {
        resources.epoll = -1;
    }
    // SAFETY: the kernel created `fd` and had not closed it (invariant 2).
    unsafe { libc::close(fd) }
}

#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "pipe"))]
unsafe extern "C" fn pipe(fds: *mut c_int) -> c_int {
    // SAFETY: the kernel passes room for two descriptors.
    if unsafe { libc::pipe2(fds, libc::O_CLOEXEC) } != 0 {
        note_shortage();
        return -1;
    }
    // SAFETY: as above; pipe2 filled both.
    let ends = unsafe { &mut *fds.cast::<[c_int; 2]>() };
    let read = low_fd(ends[0]);
    let write = low_fd(ends[1]);
    if read < 0 || write < 0 {
        for end in [read, write].into_iter().filter(|&end| end >= 0) {
            // SAFETY: created above and not handed out.
            unsafe { libc::close(end) };
        }
        set_errno(libc::EMFILE);
        return -1;
    }
    *ends = [read, write];
    if let Some(resources) = resources() {
        resources.owned.insert(read);
        resources.owned.insert(write);
        resources.spawn.fresh_pipes = [resources.spawn.fresh_pipes[1], *ends];
        resources.spawn.fresh_count = (resources.spawn.fresh_count + 1).min(2);
    }
    0
}

#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "socket"))]
extern "C" fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int {
    // SAFETY: plain system call with the kernel's arguments.
    own(unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) })
}

#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "accept"))]
unsafe extern "C" fn accept(fd: c_int, address: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: the kernel's arguments, forwarded; accept4 takes the same ones.
    own(unsafe { libc::accept4(fd, address, len, libc::SOCK_CLOEXEC) })
}

#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "eventfd"))]
extern "C" fn eventfd(initial: c_uint, flags: c_int) -> c_int {
    // SAFETY: plain system call with the kernel's arguments.
    own(unsafe { libc::eventfd(initial, flags | libc::EFD_CLOEXEC) })
}

#[unsafe(export_name = concat!(env!("STDIOBUS_EMBED_PREFIX"), "epoll_create1"))]
extern "C" fn epoll_create1(flags: c_int) -> c_int {
    // SAFETY: plain system call with the kernel's flags.
    let fd = own(unsafe { libc::epoll_create1(flags | libc::EPOLL_CLOEXEC) });
    if let Some(resources) = resources()
        && fd >= 0
        && resources.epoll < 0
    {
        resources.epoll = fd;
    }
    fd
}

/// Ends the input of the pipe whose write end is `fd` and keeps the number open: a pipe
/// with no reader takes its place, so the worker reading the old pipe sees its end while
/// the kernel's later writes to `fd` fail with EPIPE instead of reaching another file.
/// Whether it could.
pub(super) fn end_input(fd: c_int) -> bool {
    let mut ends = [-1; 2];
    // SAFETY: `ends` has room for the two descriptors.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return false;
    }
    // SAFETY: both ends were made above; `fd` is a pipe end the kernel holds, and dup3
    // closes what it was (the worker's pipe) as it takes the reader-less pipe's end.
    unsafe {
        libc::close(ends[0]);
        let moved = libc::dup3(ends[1], fd, libc::O_CLOEXEC) == fd;
        libc::close(ends[1]);
        moved
    }
}
