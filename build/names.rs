//! The names the rewrite gives, and the calls it takes over: the one place that spells
//! them. `src/interpose` defines the functions the taken-over calls reach; the crate gets
//! the prefixes from the environment cargo compiles it with ([`PREFIX_VAR`],
//! [`KERNEL_PREFIX_VAR`]).

macro_rules! prefix {
    () => {
        "stdiobus_embed_"
    };
}

/// What the taken-over libc references are prefixed with.
pub const PREFIX: &str = prefix!();
/// What the archive's own symbols are prefixed with, references included, so that another
/// copy of the kernel in the same program (the tokio binding's, say) can neither take the
/// calls meant for this one nor clash with it.
pub const KERNEL_PREFIX: &str = concat!(prefix!(), "kernel_");
/// The name the rewritten archive is linked under, so that no other `-L` folder holding a
/// `libstdio_bus.a` (the prebuilt carrier's, say) can be picked by mistake.
pub const LINKED_NAME: &str = concat!(prefix!(), "kernel");

/// The variables the crate is compiled with, holding [`PREFIX`] and [`KERNEL_PREFIX`]
/// (`env!`).
pub const PREFIX_VAR: &str = "STDIOBUS_EMBED_PREFIX";
pub const KERNEL_PREFIX_VAR: &str = "STDIOBUS_EMBED_KERNEL_PREFIX";

/// A libc function whose calls from the vendor objects become calls to
/// `PREFIX` + `name`.
pub struct TakenOver {
    pub name: &'static str,
    /// The one object whose calls are taken over, or `None` for every object.
    pub only_in: Option<&'static str>,
    /// Whether the linked objects of the known archives call it: if none does, the archive
    /// reaches the system some other way, and its calls would go unguarded.
    pub expected: bool,
}

const fn everywhere(name: &'static str) -> TakenOver {
    TakenOver {
        name,
        only_in: None,
        expected: true,
    }
}

const fn in_object(object: &'static str, name: &'static str) -> TakenOver {
    TakenOver {
        name,
        only_in: Some(object),
        expected: true,
    }
}

pub const TAKEN_OVER: [TakenOver; 14] = [
    everywhere("close"),
    everywhere("pipe"),
    everywhere("socket"),
    everywhere("accept"),
    // Only `transport_shm.o` calls it, and no program links that object (see `linked`):
    // taken over should a linked object ever call it, not required.
    TakenOver {
        name: "eventfd",
        only_in: None,
        expected: false,
    },
    everywhere("epoll_create1"),
    everywhere("epoll_wait"),
    everywhere("fork"),
    everywhere("execvp"),
    everywhere("waitpid"),
    everywhere("kill"),
    // `ingest`'s write: the bus picks the worker it goes to. Every other write (the
    // transport's to its connections, the router's of client lines to workers) is
    // shielded from SIGPIPE.
    everywhere("write"),
    // Tells which worker a line comes from, and holds back what the ring has no room for.
    in_object("transport.o", "read"),
    // `destroy` frees the router before the transport teardown that still uses it.
    in_object("bus_core.o", "stdio_bus_router_destroy"),
];

/// The entry of [`TAKEN_OVER`] that covers `object`'s call to `name`, if any.
pub fn taken_over(object: &str, name: &[u8]) -> Option<&'static TakenOver> {
    TAKEN_OVER.iter().find(|taken| {
        taken.name.as_bytes() == name && taken.only_in.is_none_or(|only| only == object)
    })
}
