//! The worker processes of a bus, as the operating system sees them: their pids, so they
//! can be reaped, and their stdin pipes, so large messages are never cut.
//!
//! # Pids and reaping
//!
//! The kernel reaps workers only when told that SIGCHLD arrived, and then with
//! `waitpid(-1)`, which would also collect the host's other children and the workers of
//! other buses. A shutdown reaches STOPPED as soon as every worker has been signalled,
//! before those processes have exited, so left alone every worker would stay a zombie for
//! the life of the host (observed). The kernel does not say which pids are its workers.
//! So the bus learns them: `start` forks every worker from the calling thread, and Linux
//! lists each thread's children in `/proc/thread-self/children`; the pids that appear
//! across `start` are the workers.
//!
//! # Pipes and large messages
//!
//! `ingest` hands a message to a worker with one non-blocking `write` to its stdin pipe
//! and does not check for a short write: a message longer than the room left in the pipe
//! (64 KiB when empty) is cut, and the rest of it silently dropped (observed). The bus
//! therefore finds each worker's pipe (the one whose inode is the worker's fd 0), makes it
//! as large as the system allows, and before handing over a message that a pipe cannot
//! take atomically (more than `PIPE_BUF` bytes) checks that every worker's pipe has room
//! for it.
//!
//! A pid is signalled only while it is still an unreaped child of this process (checked
//! with `waitid(WNOWAIT)` right before), so a pid the host reaped and the system reused is
//! never hit.
//!
//! On systems other than Linux, or without `/proc`, no worker is found: nothing is
//! reaped, signalled or checked here, and the bus falls back to the kernel's own stop.

use core::time::Duration;

use crate::Error;
use crate::clock::Deadline;

/// Worker processes tracked per bus.
pub(crate) const MAX_WORKERS: usize = 256;
/// Poll interval while waiting for workers to exit or to set up their stdin.
const WAIT_STEP: Duration = Duration::from_millis(1);
/// How long `start` waits, for all its workers together, for their stdin to become the
/// pipe from the kernel.
#[cfg(target_os = "linux")]
const STDIN_LOOKUP_LIMIT: Duration = Duration::from_millis(500);
/// How long killed workers get to be collected before they are given up on.
const KILLED_LIMIT: Duration = Duration::from_secs(1);
/// Pipe sizes to ask for, largest first: above `/proc/sys/fs/pipe-max-size` (1 MiB by
/// default) only a privileged process succeeds.
#[cfg(target_os = "linux")]
const PIPE_SIZES: [libc::c_int; 3] = [4 << 20, 2 << 20, 1 << 20];

/// One worker process.
#[derive(Clone, Copy, Debug)]
struct Worker {
    pid: libc::pid_t,
    /// This process's end of the worker's stdin pipe, or -1 when not found.
    stdin: libc::c_int,
    /// Bytes that pipe holds; 0 when unknown.
    capacity: usize,
}

/// The worker processes of one bus that have not been reaped yet.
#[derive(Debug, Default)]
pub(crate) struct Workers {
    list: heapless::Vec<Worker, MAX_WORKERS>,
}

/// Children of the calling thread.
pub(crate) type Children = heapless::Vec<libc::pid_t, 1024>;

/// More workers were spawned than a bus can track.
#[derive(Debug)]
pub(crate) struct TooMany;

impl Workers {
    pub(crate) const fn new() -> Self {
        Self {
            list: heapless::Vec::new(),
        }
    }

    /// The children of the calling thread right now.
    pub(crate) fn children() -> Children {
        let mut pids = Children::new();
        #[cfg(target_os = "linux")]
        {
            let mut buffer = [0u8; 8192];
            let len = read_file(c"/proc/thread-self/children", &mut buffer);
            let mut words = buffer[..len].split(|&b| b == b' ');
            if len == buffer.len() {
                // A full buffer may end in the middle of a pid: drop the last word.
                words.next_back();
            }
            for pid in words.filter_map(parse_number) {
                if pids.push(pid).is_err() {
                    break;
                }
            }
        }
        pids
    }

    /// Adds the workers spawned on this thread since `before` was taken, with their pipes
    /// enlarged.
    pub(crate) fn add_spawned(&mut self, before: &Children) -> Result<(), TooMany> {
        #[cfg(target_os = "linux")]
        let lookup = Deadline::after(STDIN_LOOKUP_LIMIT);
        for pid in Self::children()
            .into_iter()
            .filter(|pid| !before.contains(pid))
        {
            #[cfg(target_os = "linux")]
            let (stdin, capacity) = stdin_pipe(pid, &lookup);
            #[cfg(not(target_os = "linux"))]
            let (stdin, capacity) = (-1, 0);
            let worker = Worker {
                pid,
                stdin,
                capacity,
            };
            self.list.push(worker).map_err(|_| TooMany)?;
        }
        Ok(())
    }

    /// Whether no worker process is known.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Sends `signal` to every worker that is still an unreaped child of this process.
    pub(crate) fn signal(&self, signal: libc::c_int) {
        for worker in &self.list {
            if is_unreaped_child(worker.pid) {
                // SAFETY: an unreaped child's pid cannot have been reused.
                unsafe { libc::kill(worker.pid, signal) };
            }
        }
    }

    /// The longest message every worker's stdin pipe can hold, if the pipes are known.
    pub(crate) fn max_message_len(&self) -> Option<usize> {
        self.pipes().map(|w| w.capacity - 1).min()
    }

    /// Refuses a message that some worker's pipe could not take whole right now.
    pub(crate) fn check_room(&self, len: usize) -> Result<(), Error> {
        // The kernel writes the message and then a newline.
        let needed = len + 1;
        if needed <= libc::PIPE_BUF {
            return Ok(()); // atomic: written whole or refused by the kernel
        }
        for worker in self.pipes() {
            if needed > worker.capacity {
                return Err(Error::TooLarge {
                    len,
                    max: worker.capacity - 1,
                });
            }
            let mut queued: libc::c_int = 0;
            // SAFETY: `stdin` is an open pipe fd of the live bus; FIONREAD writes an int.
            if unsafe { libc::ioctl(worker.stdin, libc::FIONREAD, &mut queued) } == 0 {
                let room = guaranteed_room(worker.capacity, queued.max(0) as usize);
                if needed > room {
                    return Err(Error::PipeFull { needed, room });
                }
            }
        }
        Ok(())
    }

    /// Waits up to `limit` for every worker to exit and collects it; kills those still
    /// running then and collects them too, giving up on any that does not go within a
    /// second (a process stuck in the system can outlive SIGKILL for a while). Forgets
    /// every worker. Never blocks beyond those bounds.
    pub(crate) fn reap(&mut self, limit: Duration) {
        self.collect_until(Deadline::after(limit));
        if !self.list.is_empty() {
            self.signal(libc::SIGKILL);
            self.collect_until(Deadline::after(KILLED_LIMIT));
        }
        self.list.clear();
    }

    fn collect_until(&mut self, deadline: Deadline) {
        loop {
            self.list.retain(|w| !collect(w.pid));
            if self.list.is_empty() || deadline.has_passed() {
                return;
            }
            sleep(WAIT_STEP);
        }
    }

    fn pipes(&self) -> impl Iterator<Item = &Worker> {
        self.list.iter().filter(|w| w.stdin >= 0 && w.capacity > 0)
    }
}

/// Whether `pid` is a child of this process that nobody has reaped yet (running or
/// exited), without reaping it.
fn is_unreaped_child(pid: libc::pid_t) -> bool {
    // SAFETY: zeroed `siginfo_t` is a valid out-parameter; WNOWAIT leaves the child as is.
    let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: as above; a pid that is not our child gives ECHILD.
    unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) == 0 }
}

/// Whether `pid` is gone: collected now, or already collected by someone else.
fn collect(pid: libc::pid_t) -> bool {
    loop {
        // SAFETY: a NULL status pointer is allowed; WNOHANG never blocks.
        let rc = unsafe { libc::waitpid(pid, core::ptr::null_mut(), libc::WNOHANG) };
        if rc == pid {
            return true;
        }
        if rc == 0 {
            return false;
        }
        if errno() != libc::EINTR {
            // ECHILD: the host (or the system, with SIGCHLD ignored) reaped it already.
            return true;
        }
    }
}

/// This process's end of `pid`'s stdin pipe, enlarged, and its size; `(-1, 0)` if it
/// cannot be found before `deadline`.
///
/// A worker just forked may not have moved its pipe to fd 0 yet, so this looks again
/// until `deadline`; a worker that has already exited (its exec failed, say) has no fd 0
/// any more and is given up on at once.
#[cfg(target_os = "linux")]
fn stdin_pipe(pid: libc::pid_t, deadline: &Deadline) -> (libc::c_int, usize) {
    let fd = loop {
        match find_stdin_pipe(pid) {
            Lookup::Found(fd) => break fd,
            Lookup::Gone => return (-1, 0),
            Lookup::NotYet if deadline.has_passed() => return (-1, 0),
            Lookup::NotYet => sleep(WAIT_STEP),
        }
    };
    for size in PIPE_SIZES {
        // SAFETY: resizing a pipe we hold only changes its capacity.
        if unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size) } >= 0 {
            break;
        }
    }
    // SAFETY: F_GETPIPE_SZ only reads.
    let capacity = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    (fd, usize::try_from(capacity).unwrap_or(0))
}

#[cfg(target_os = "linux")]
enum Lookup {
    Found(libc::c_int),
    NotYet,
    Gone,
}

/// The write end, held by this process, of the pipe that is `pid`'s fd 0.
#[cfg(target_os = "linux")]
fn find_stdin_pipe(pid: libc::pid_t) -> Lookup {
    let mut path = heapless::String::<32>::new();
    if core::fmt::write(&mut path, format_args!("/proc/{pid}/fd/0\0")).is_err() {
        return Lookup::Gone;
    }
    // SAFETY: zeroed `stat` is a valid out-parameter; `path` is NUL-terminated.
    let mut theirs: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::stat(path.as_ptr().cast(), &mut theirs) } != 0 {
        return if errno() == libc::ENOENT {
            Lookup::Gone
        } else {
            Lookup::NotYet
        };
    }
    if theirs.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return Lookup::NotYet;
    }
    let found = find_own_fd(|fd| {
        // SAFETY: zeroed `stat` is a valid out-parameter.
        let mut ours: libc::stat = unsafe { core::mem::zeroed() };
        // SAFETY: `fd` is a descriptor number listed as open; fstat only reads it.
        let same_pipe = unsafe { libc::fstat(fd, &mut ours) } == 0
            && ours.st_ino == theirs.st_ino
            && ours.st_dev == theirs.st_dev;
        // SAFETY: F_GETFL only reads the descriptor's flags.
        same_pipe && unsafe { libc::fcntl(fd, libc::F_GETFL) } & libc::O_ACCMODE == libc::O_WRONLY
    });
    found.map_or(Lookup::NotYet, Lookup::Found)
}

/// The calling thread's `errno`.
fn errno() -> libc::c_int {
    // SAFETY: the C library keeps a valid, thread-local errno for the calling thread.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    unsafe {
        *libc::__errno_location()
    }
    // SAFETY: as above.
    #[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
    unsafe {
        *libc::__error()
    }
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

/// The first open descriptor of this process for which `matches` holds.
#[cfg(target_os = "linux")]
fn find_own_fd(mut matches: impl FnMut(libc::c_int) -> bool) -> Option<libc::c_int> {
    // SAFETY: the path is NUL-terminated; a NULL result is handled.
    let dir = unsafe { libc::opendir(c"/proc/self/fd".as_ptr()) };
    if dir.is_null() {
        return None;
    }
    let mut found = None;
    loop {
        // SAFETY: `dir` is open; the entry is valid until the next readdir.
        let entry = unsafe { libc::readdir(dir) };
        if entry.is_null() {
            break;
        }
        // SAFETY: `d_name` is NUL-terminated within the entry.
        let name = unsafe { core::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
        if let Some(fd) = parse_number(name.to_bytes()) {
            if matches(fd) {
                found = Some(fd);
                break;
            }
        }
    }
    // SAFETY: `dir` is open and closed once.
    unsafe { libc::closedir(dir) };
    found
}

#[cfg(target_os = "linux")]
fn read_file(path: &core::ffi::CStr, buffer: &mut [u8]) -> usize {
    // SAFETY: `path` is NUL-terminated; the flags open read-only.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return 0;
    }
    let mut len = 0;
    while len < buffer.len() {
        // SAFETY: the destination is the unfilled tail of `buffer`.
        let n = unsafe { libc::read(fd, buffer[len..].as_mut_ptr().cast(), buffer.len() - len) };
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    len
}

/// A positive decimal number, as procfs writes pids and descriptor numbers.
fn parse_number(word: &[u8]) -> Option<libc::c_int> {
    let text = core::str::from_utf8(word).ok()?.trim();
    text.parse().ok().filter(|&n: &libc::c_int| n >= 0)
}

fn sleep(duration: Duration) {
    let request = libc::timespec {
        tv_sec: duration.as_secs() as libc::time_t,
        tv_nsec: duration.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `request` is a valid timespec; an interrupted sleep just ends early.
    unsafe { libc::nanosleep(&request, core::ptr::null_mut()) };
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

    #[test]
    fn numbers_parse_from_the_proc_format() {
        assert_eq!(parse_number(b"12276"), Some(12276));
        assert_eq!(parse_number(b"12277\n"), Some(12277));
        assert_eq!(parse_number(b"0"), Some(0));
        assert_eq!(parse_number(b""), None);
        assert_eq!(parse_number(b"."), None);
        assert_eq!(parse_number(b"x1"), None);
    }
}
