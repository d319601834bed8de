//! What the linked vendor objects call outside themselves, each name sorted into one of
//! three kinds: taken over (`names::TAKEN_OVER`), known to be harmless ([`HARMLESS`]), or
//! unknown, which the build refuses. Calls between the vendor objects are the kernel's own
//! and need no sorting.

use std::collections::BTreeSet;

use crate::member::Member;
use crate::names::{self, TAKEN_OVER};

/// The functions (and data) the linked objects use from libc and leave to it: none makes,
/// closes or moves a descriptor the bus keeps account of, starts, signals or reaps a
/// process, or blocks beyond what is noted. The calls were read in the x86_64 machine code
/// of both known archives; their aarch64 objects call the same functions, and `memset`.
const HARMLESS: &[&str] = &[
    // Memory, strings, errno, character classes.
    "malloc",
    "calloc",
    "realloc",
    "free",
    "strdup",
    "memcpy",
    "memmove",
    "memset",
    "strlen",
    "strcmp",
    "strncpy",
    "strerror",
    "__errno_location",
    "__ctype_b_loc",
    // Made by the linker for position-independent code (x86_64).
    "_GLOBAL_OFFSET_TABLE_",
    // The kernel's log lines to stderr, and the clock that stamps them and its timeouts.
    "stderr",
    "fprintf",
    "vfprintf",
    "fputc",
    "fwrite",
    "fflush",
    "isatty",
    "snprintf",
    "vsnprintf",
    "time",
    "localtime_r",
    "strftime",
    // A configuration read from a file (`config_path`) within `create`: its stream's
    // descriptor is libc's to close (fclose does not call the renamed `close`).
    "fopen",
    "fread",
    "fseek",
    "ftell",
    "ferror",
    "fclose",
    // A plain transfer on a descriptor the kernel already holds: `config.o` reads a
    // configuration. The reads the bus must see are taken over in their one object
    // (`transport.o`'s `read`); every `write` is taken over.
    "read",
    // The listener (TCP or Unix socket) set up on the socket the taken-over `socket` made;
    // `unlink` removes the Unix path the host configured, before bind and at destroy.
    "bind",
    "listen",
    "setsockopt",
    "inet_pton",
    "inet_ntop",
    "unlink",
    // Adds, changes and removes the kernel's descriptors in its own epoll set, which the
    // bus shares (it adds its timer, wake event and pidfds there with tags the kernel
    // skips).
    "epoll_ctl",
    // Only F_GETFL and F_SETFL with O_NONBLOCK (`set_nonblocking`, `stdio_bus_start`,
    // `embed_accept_handler`, `stdio_bus_register_embedded_worker`): no F_DUPFD, which
    // would make a descriptor outside the bus's account.
    "fcntl",
    // Only in the child `spawn_worker` forks, between `fork` and `execvp`: it moves the
    // worker's pipe ends onto 0 and 1, dropping close-on-exec there as the exec needs. The
    // child's copy of the bus's account is never read, and `_exit(127)` ends the child
    // when the exec fails.
    "dup2",
    "_exit",
    // `stdio_bus_pm_stop_all`'s pause of 100 ms between reaps while SIGTERMed workers end,
    // for at most its timeout: 1 s from `destroy` and a failed `start`, 0 from `step` (never
    // sleeps). The bus collects its workers before `destroy`, so the loop finds them gone
    // and does not sleep; raw `sys` calls may wait up to two seconds there.
    "usleep",
];

/// What `members` (those `linked`) call that is neither taken over, nor the kernel's own,
/// nor [`HARMLESS`], one line per object and name; and the taken-over names that no linked
/// object calls although the known archives do.
pub fn check(members: &[Member<'_>], linked: &[bool]) -> Vec<String> {
    let linked_members = || {
        members
            .iter()
            .zip(linked)
            .filter(|(_, linked)| **linked)
            .map(|(member, _)| member)
    };
    let own: BTreeSet<&[u8]> = linked_members().flat_map(Member::exports).collect();
    let mut called = BTreeSet::new();
    let mut problems = Vec::new();
    for member in linked_members() {
        let imports: BTreeSet<&[u8]> = member.imports().collect();
        for name in imports {
            if let Some(taken) = names::taken_over(&member.name, name) {
                called.insert(taken.name);
            } else if !own.contains(name) && !HARMLESS.iter().any(|known| known.as_bytes() == name)
            {
                problems.push(format!(
                    "`{}` calls `{}`, which stdiobus-embed neither takes over nor knows to be \
                     harmless: the bus cannot vouch for what it does to its descriptors, \
                     processes and memory",
                    member.name,
                    String::from_utf8_lossy(name)
                ));
            }
        }
    }
    for taken in TAKEN_OVER.iter().filter(|taken| taken.expected) {
        if !called.contains(taken.name) {
            problems.push(format!(
                "no linked vendor object{} calls `{}`, which stdiobus-embed takes over: the \
                 archive reaches the system some other way, unguarded",
                taken
                    .only_in
                    .map(|object| format!(" (`{object}`)"))
                    .unwrap_or_default(),
                taken.name
            ));
        }
    }
    problems
}
