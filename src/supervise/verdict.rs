//! What the kernel is told of a reaped worker, and whether it is to restart it.

use cty::c_int;

use super::{EndKind, Life};

/// What became of a worker the kernel was told had crashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Restart {
    /// A new process took its place.
    Done,
    /// It will not be restarted, for this reason.
    Refused(Refusal),
}

/// Why a crashed worker is not restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The configuration's `max_restarts` within `restart_window_sec` are used up (the
    /// kernel did not fork).
    LimitReached,
    /// The fork failed.
    SpawnFailed,
    /// The transport had closed the worker's output: a new process could not be read.
    OutputClosed,
    /// The new process could not execute the worker's command: another would fail alike.
    ExecFailed,
}

/// What the kernel hears of a worker whose status is gone: someone else reaped it (a host
/// that ignores SIGCHLD, or reaps with `waitpid(-1)`), so nobody can tell a crash from a
/// clean exit. It is taken for a crash, `exit(1)`, so that the pool does not serve one
/// worker short for good.
const UNKNOWN_END: c_int = 1 << 8;

/// The status the kernel's `waitpid` reports for a worker whose life is `life` (`None`
/// while it is not reaped). The kernel restarts a worker that did not exit with 0, so it
/// hears a crash only of a process the bus will have restarted: one that ran its command
/// (`exec_errno` 0) while `restarts` are allowed, with its own status or, where that is
/// gone, [`UNKNOWN_END`]. Anything else (a stop or a drop, a command that could not run)
/// is reported as a clean exit.
///
/// A process the host asked to end (`ended`) is reported as the host asked: a stop as a
/// clean exit, so the kernel does not restart it; a restart as a crash, even when the
/// process exited with 0 at its SIGTERM, so the kernel does.
pub(crate) fn status_for_kernel(
    life: Life,
    exec_errno: u16,
    restarts: bool,
    ended: Option<EndKind>,
) -> Option<c_int> {
    let status = life.status()?;
    if !restarts || exec_errno != 0 || ended == Some(EndKind::Stop) {
        return Some(0);
    }
    match (status, ended) {
        (Some(0) | None, Some(EndKind::Restart)) => Some(UNKNOWN_END),
        _ => Some(status.unwrap_or(UNKNOWN_END)),
    }
}

/// What follows once the kernel hears a worker's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing: a clean exit, or restarts are off.
    Nothing,
    /// The kernel restarts the worker, and the bus lets its fork through. Until the fork
    /// comes, the kernel is taken to have refused for its restart limit.
    Restart,
    /// The worker cannot be restarted.
    Refuse(Refusal),
}

/// What follows once the kernel hears `status` of a worker while `restarts` are allowed.
/// A replacement can be served only if the worker's output connection was kept open for
/// it (`output_kept`).
pub(crate) fn restart_verdict(status: c_int, restarts: bool, output_kept: bool) -> Verdict {
    match (status, restarts, output_kept) {
        (0, _, _) | (_, false, _) => Verdict::Nothing,
        (_, true, true) => Verdict::Restart,
        (_, true, false) => Verdict::Refuse(Refusal::OutputClosed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_hears_a_crash_only_when_the_bus_restarts_it() {
        let crashed = Life::Ended(Some(9));
        assert_eq!(status_for_kernel(crashed, 0, true, None), Some(9));
        assert_eq!(
            status_for_kernel(Life::Told(Some(9)), 0, true, None),
            Some(9)
        );
        assert_eq!(
            status_for_kernel(crashed, 0, false, None),
            Some(0),
            "stopping"
        );
        assert_eq!(
            status_for_kernel(crashed, 2, true, None),
            Some(0),
            "exec failed"
        );
        assert_eq!(
            status_for_kernel(Life::Ended(None), 0, true, None),
            Some(UNKNOWN_END)
        );
        assert_eq!(
            status_for_kernel(Life::Ended(None), 0, false, None),
            Some(0)
        );
        assert_eq!(
            status_for_kernel(Life::Ended(Some(0)), 0, true, None),
            Some(0)
        );
        assert_eq!(status_for_kernel(Life::Running, 0, true, None), None);
        assert_eq!(status_for_kernel(Life::Exited, 0, true, None), None);
    }

    #[test]
    fn the_kernel_hears_what_the_host_asked_for() {
        let restart = Some(EndKind::Restart);
        let stop = Some(EndKind::Stop);
        let clean = Life::Ended(Some(0));
        let killed = Life::Ended(Some(9));
        assert_eq!(
            status_for_kernel(clean, 0, true, restart),
            Some(UNKNOWN_END)
        );
        assert_eq!(status_for_kernel(killed, 0, true, restart), Some(9));
        assert_eq!(status_for_kernel(killed, 0, true, stop), Some(0));
        assert_eq!(
            status_for_kernel(clean, 0, false, restart),
            Some(0),
            "stopping"
        );
    }

    #[test]
    fn a_crash_is_restarted_only_through_a_kept_connection() {
        assert_eq!(
            restart_verdict(0, true, true),
            Verdict::Nothing,
            "a clean exit"
        );
        assert_eq!(
            restart_verdict(9, false, true),
            Verdict::Nothing,
            "restarts off"
        );
        assert_eq!(restart_verdict(9, true, true), Verdict::Restart);
        assert_eq!(
            restart_verdict(9, true, false),
            Verdict::Refuse(Refusal::OutputClosed)
        );
    }
}
