//! Workers served in-process over a socket instead of a spawned process.
//!
//! Only the newer kernel archive (PyPI `stdiobus` 2.2.1) has this API: enable the
//! `embedded-workers` feature and link that archive through `STDIO_BUS_LIB_DIR`.
//!
//! Observed with that archive, and the reason for the shape of this API:
//! - the kernel takes over the descriptors: it closes them when the worker is
//!   unregistered, but not when the instance is destroyed;
//! - given one descriptor for both directions it closes it twice, so the bus hands it two
//!   (the socket and a duplicate of it), and lets it close each once (`interpose`);
//! - it accepts any pool name. The bus routes host messages to spawned workers only (see
//!   `routing`), so an embedded worker receives none from `send`.
//!
//! The bus therefore owns the descriptors from registration on and unregisters every
//! embedded worker itself before it stops, so none is leaked or closed twice.

use core::ffi::CStr;

use cty::c_int;

use super::kernel::Kernel;
use super::{Bus, Failed};
use crate::state::Running;
use crate::{Error, WorkerId, sys};

/// Embedded workers one bus keeps track of.
pub(super) const MAX_EMBEDDED: usize = 16;

/// Ids of the embedded workers a bus has registered and not unregistered.
pub(super) type Registered = heapless::Vec<c_int, MAX_EMBEDDED>;

/// A worker registered with [`Bus::register_embedded_worker`]; unregister it with
/// [`Bus::unregister_embedded_worker`], or let the bus do so when it stops.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EmbeddedWorker {
    id: c_int,
}

impl EmbeddedWorker {
    /// The worker, as [`Event::Worker`](crate::Event::Worker) reports it.
    pub const fn id(&self) -> WorkerId {
        WorkerId::from_raw(self.id)
    }
}

impl<'r> Bus<'r, Running> {
    /// Registers an in-process worker in pool `pool`, reached through `socket`: the
    /// kernel writes requests to it and reads newline-delimited responses from it. The
    /// host serves the other end, typically of a `UnixStream::pair()`.
    ///
    /// The bus owns `socket` from now on and closes it when the worker is unregistered
    /// (at the latest when the bus stops). On failure the socket comes back.
    #[cfg(feature = "std")]
    pub fn register_embedded_worker(
        &mut self,
        socket: std::os::fd::OwnedFd,
        pool: &CStr,
    ) -> Result<EmbeddedWorker, Failed<std::os::fd::OwnedFd>> {
        use std::os::fd::{AsRawFd, IntoRawFd};
        if self.kernel.embedded.is_full() {
            let error = Error::TooManyWorkers { max: MAX_EMBEDDED };
            return Err(Failed {
                error,
                value: socket,
            });
        }
        // Two descriptors for the two directions: the kernel closes each it was given.
        // SAFETY: duplicating an open descriptor; the copy is closed below or handed over.
        let copy = unsafe { libc::fcntl(socket.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if copy < 0 {
            let error = Error::Kernel(crate::ErrorCode::Generic);
            return Err(Failed {
                error,
                value: socket,
            });
        }
        let raw = self.kernel.raw.as_ptr();
        let fd = socket.as_raw_fd();
        // The kernel may close them from now on, each once; numbers it cannot serve it
        // would refuse anyway.
        let adopted = self.kernel.resources.adopt(fd) && self.kernel.resources.adopt(copy);
        // SAFETY: `raw` is live and RUNNING (type state); both descriptors are open;
        // `pool` is read during the call only.
        let rc = if adopted {
            self.kernel.resources.enter(|| unsafe {
                sys::stdio_bus_register_embedded_worker(raw, fd, copy, pool.as_ptr())
            })
        } else {
            sys::STDIO_BUS_EINVAL
        };
        self.producer.flush_loss();
        match Error::check(rc) {
            Ok(id) => {
                // The kernel owns both descriptors now.
                let _ = socket.into_raw_fd();
                let _ = self.kernel.embedded.push(id);
                Ok(EmbeddedWorker { id })
            }
            Err(error) => {
                // The kernel refused and closed neither (observed): both are ours again.
                self.kernel.resources.disown(fd);
                self.kernel.resources.disown(copy);
                // SAFETY: the copy is ours alone and closed once.
                unsafe { libc::close(copy) };
                Err(Failed {
                    error,
                    value: socket,
                })
            }
        }
    }

    /// Detaches an embedded worker; the kernel closes its descriptors. If the kernel
    /// refuses, the worker stays registered and comes back with the error (the bus still
    /// unregisters it before it stops).
    pub fn unregister_embedded_worker(
        &mut self,
        worker: EmbeddedWorker,
    ) -> Result<(), Failed<EmbeddedWorker>> {
        match self.kernel.unregister(worker.id) {
            Ok(()) => {
                self.kernel.embedded.retain(|&id| id != worker.id);
                Ok(())
            }
            Err(error) => Err(Failed {
                error,
                value: worker,
            }),
        }
    }
}

impl Kernel<'_> {
    /// Unregisters every embedded worker still registered (the kernel would leave their
    /// descriptors open at destroy).
    pub(super) fn unregister_all_embedded(&mut self) {
        while let Some(id) = self.embedded.pop() {
            // Nothing to report to from here; the id goes either way.
            let _ = self.unregister(id);
        }
    }

    fn unregister(&mut self, id: c_int) -> Result<(), Error> {
        let raw = self.raw.as_ptr();
        // SAFETY: `raw` is live; the call only takes the worker's id.
        let rc = self
            .resources
            .enter(|| unsafe { sys::stdio_bus_unregister_embedded_worker(raw, id) });
        self.flush_loss();
        Error::check(rc).map(drop)
    }
}
