//! A worker process's life, as one value.

use cty::c_int;

/// How a process ended, as `waitpid` reported it; `None` when someone else reaped it
/// first (a host that ignores SIGCHLD, say), so its status is unknown.
pub(crate) type WaitStatus = Option<c_int>;

/// Where a worker process is in its life. The bus reaps a worker itself once its output
/// has been read to the end; the kernel learns of it later, through its own `waitpid`,
/// and only then may restart it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Life {
    /// Running, as far as anyone knows.
    Running,
    /// Its pidfd said it exited; not reaped, so its output may still be read and its pid
    /// cannot be reused.
    Exited,
    /// Reaped, with this status; the kernel has not been told.
    Ended(WaitStatus),
    /// Reaped, and the kernel's `waitpid` has reported it: it is the kernel's to restart
    /// or to forget.
    Told(WaitStatus),
}

impl Life {
    /// Whether the process has not been reaped: it may still be signalled, and it counts
    /// as alive.
    pub(crate) const fn is_unreaped(self) -> bool {
        matches!(self, Self::Running | Self::Exited)
    }

    /// The wait status, once reaped.
    pub(crate) const fn status(self) -> Option<WaitStatus> {
        match self {
            Self::Ended(status) | Self::Told(status) => Some(status),
            Self::Running | Self::Exited => None,
        }
    }

    /// Its pidfd became readable: the process exited.
    pub(crate) fn exit(&mut self) {
        if *self == Self::Running {
            *self = Self::Exited;
        }
    }

    /// It was reaped with `status`.
    pub(crate) fn reap(&mut self, status: WaitStatus) {
        if self.is_unreaped() {
            *self = Self::Ended(status);
        }
    }

    /// The kernel's `waitpid` reported it.
    pub(crate) fn tell_kernel(&mut self) {
        if let Self::Ended(status) = *self {
            *self = Self::Told(status);
        }
    }

    /// Whether the kernel has yet to learn that the process ended (or that it runs: the
    /// kernel's `waitpid` waits for every unreaped child too).
    pub(crate) const fn kernel_untold(self) -> bool {
        !matches!(self, Self::Told(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_life_moves_forward_only() {
        let mut life = Life::Running;
        life.tell_kernel();
        assert_eq!(
            life,
            Life::Running,
            "the kernel learns only of a reaped process"
        );
        life.exit();
        assert_eq!(life, Life::Exited);
        assert!(life.is_unreaped());
        life.reap(Some(9));
        assert_eq!(life, Life::Ended(Some(9)));
        life.exit();
        life.reap(Some(0));
        assert_eq!(life, Life::Ended(Some(9)), "reaped once");
        assert!(life.kernel_untold());
        life.tell_kernel();
        assert_eq!(life, Life::Told(Some(9)));
        assert!(!life.kernel_untold());
        assert_eq!(life.status(), Some(Some(9)));
    }

    #[test]
    fn a_running_process_can_be_reaped_before_its_pidfd_says_so() {
        let mut life = Life::Running;
        life.reap(None);
        assert_eq!(life, Life::Ended(None));
        assert!(!life.is_unreaped());
    }
}
