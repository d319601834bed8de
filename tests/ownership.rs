//! The kernel touches only its own descriptors and processes: the host's files stay open,
//! workers start clean and die with their host, and the bus has a descriptor to wait on.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{DEADLINE, Seen, WORKER, is_running, start, start_echo};
use serde_json::json;
use stdiobus_embed::{Bus, ExitStatus, Pool, Running, WorkerId};

/// Held by each test for its whole run: these tests watch descriptor numbers and processes
/// of the whole process, which other tests in this binary would take meanwhile.
fn alone() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A file in a fresh folder under the target directory.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stdiobus-ownership-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn open_fd_numbers() -> Vec<i32> {
    common::open_fds()
        .iter()
        .filter_map(|fd| fd.parse().ok())
        .collect()
}

#[test]
fn a_host_file_that_takes_a_dead_workers_number_survives_the_bus() {
    let _alone = alone();
    let before = open_fd_numbers();
    let (mut bus, mut events) = start_echo(1);
    let bus_fds: Vec<i32> = open_fd_numbers()
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .collect();
    bus.send(br#"{"jsonrpc":"2.0","id":1,"method":"exit"}"#)
        .unwrap();
    assert_eq!(
        common::wait_for_exit(&mut bus, &mut events, WorkerId::new(0)),
        ExitStatus::Code(0)
    );

    // The worker's pipes are closed; files opened now take their numbers.
    let mut files: Vec<(File, Vec<u8>)> = (0..8)
        .map(|i| {
            let mut file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(scratch(&format!("survivor-{i}")))
                .unwrap();
            let bytes = format!("file {i} keeps its bytes\n")
                .repeat(100)
                .into_bytes();
            file.write_all(&bytes).unwrap();
            (file, bytes)
        })
        .collect();
    assert!(
        files
            .iter()
            .any(|(file, _)| bus_fds.contains(&file.as_raw_fd())),
        "some file reuses a number the bus had ({bus_fds:?})"
    );

    drop(bus.stop(Duration::from_secs(1)).unwrap());
    for (file, bytes) in &mut files {
        let mut back = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut back).unwrap();
        assert_eq!(&back, bytes, "the file is open and intact");
    }
    drop(files); // closing each exactly once: std aborts on a descriptor closed under it
}

#[test]
fn files_written_while_buses_churn_are_never_damaged() {
    let _alone = alone();
    const CYCLES: usize = 1000;
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let (mut written, mut damaged) = (0u64, 0u64);
            let kept = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(scratch("kept"))
                .unwrap();
            while !done.load(Ordering::Relaxed) {
                let pattern = format!("round {written}\n").repeat(200).into_bytes();
                // A file kept open across cycles, and one opened anew each round: the
                // latter takes whatever number was freed last.
                let fresh = scratch(&format!("fresh-{}", written % 4));
                let ok = kept.write_all_at(&pattern, 0).is_ok()
                    && std::fs::write(&fresh, &pattern).is_ok()
                    && {
                        let mut back = vec![0; pattern.len()];
                        kept.read_exact_at(&mut back, 0).is_ok() && back == pattern
                    }
                    && std::fs::read(&fresh).is_ok_and(|back| back == pattern);
                written += 1;
                damaged += u64::from(!ok);
            }
            (written, damaged)
        });
        for _ in 0..CYCLES {
            let (mut bus, mut events) = start(&[Pool::new("quitter", "/bin/true")]);
            common::wait_for_exit(&mut bus, &mut events, WorkerId::new(0));
            drop(bus);
        }
        done.store(true, Ordering::Relaxed);
        let (written, damaged) = writer.join().unwrap();
        assert!(written > 0);
        assert_eq!(damaged, 0, "{damaged} of {written} files damaged");
    });
}

/// What `/proc/PID/fd/*` point at, by descriptor number.
fn fd_targets(pid: u32) -> Vec<(i32, String)> {
    let mut targets: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect();
    targets.sort();
    targets
}

/// A signal mask field of `/proc/PID/status`.
fn mask(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix(field)).unwrap();
    u64::from_str_radix(line.trim(), 16).unwrap()
}

/// Waits until `pid` runs the program named `comm` (it has exec'd).
fn wait_for_exec(pid: u32, comm: &str) {
    let deadline = Instant::now() + DEADLINE;
    let runs =
        || std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm);
    while !runs() {
        assert!(Instant::now() < deadline, "worker {pid} never ran {comm}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn workers_start_with_stdio_only_and_a_clean_signal_state() {
    let _alone = alone();
    // The host holds a descriptor that is not close-on-exec and blocks a signal; a plain
    // fork and exec would hand both to every worker.
    // SAFETY: duplicating stderr; the copy is closed below.
    let inheritable = unsafe { libc::dup(2) };
    assert!(inheritable > 2);
    // SAFETY: a valid signal set, applied to this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    // Two workers: the second is forked while the kernel holds the first one's pipes.
    let (bus, _events) = start(&[Pool::new("cat", "/bin/cat").instances(2)]);
    for id in (0..2).map(WorkerId::new) {
        let pid = bus.worker_pid(id).unwrap();
        wait_for_exec(pid, "cat");
        // Right after exec the dynamic loader may still hold a library open: wait for the
        // worker to settle, and fail on anything that stays.
        let deadline = Instant::now() + DEADLINE;
        loop {
            let targets = fd_targets(pid);
            if targets.iter().map(|(fd, _)| *fd).eq([0, 1, 2]) {
                break;
            }
            assert!(Instant::now() < deadline, "worker {id} holds {targets:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(mask(pid, "SigBlk:"), 0, "worker {id}: an empty signal mask");
        let pipe_bit = 1 << (libc::SIGPIPE - 1);
        assert_eq!(
            mask(pid, "SigIgn:") & pipe_bit,
            0,
            "worker {id}: default SIGPIPE"
        );
    }
    // SAFETY: closing the copy made above, once.
    unsafe { libc::close(inheritable) };
}

#[test]
fn the_hosts_own_children_inherit_no_pipe_of_the_bus() {
    let _alone = alone();
    let (bus, _events) = start(&[Pool::new("cat", "/bin/cat").instances(2)]);
    let mut pipes = Vec::new();
    for id in (0..2).map(WorkerId::new) {
        let pid = bus.worker_pid(id).unwrap();
        wait_for_exec(pid, "cat");
        let ends = fd_targets(pid).into_iter().filter(|(fd, _)| *fd < 2);
        pipes.extend(ends.map(|(_, target)| target));
    }
    assert_eq!(pipes.len(), 4);
    let mut child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    wait_for_exec(child.id(), "sleep");
    let inherited = fd_targets(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    for (fd, target) in inherited {
        assert!(
            !pipes.contains(&target),
            "the host's child got {target} as fd {fd}"
        );
    }
}

/// Set in a re-run of this test binary that plays the host to be killed.
const HOST_VAR: &str = "STDIOBUS_TEST_KILLED_HOST";

/// The children of process `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|child| child.parse().ok())
        .collect()
}

/// A host killed with SIGKILL leaves no worker, and nothing a worker started: the worker
/// here starts a child of its own, as `npx` starts `sh` and `sh` starts `node`. The host
/// starts its bus on a thread that ends at once, so nothing ties the workers to it but
/// the host process itself.
#[test]
fn a_host_killed_with_sigkill_leaves_no_worker() {
    let _alone = alone();
    if std::env::var_os(HOST_VAR).is_some() {
        let pools = [Pool::new("parent", "/bin/sh").args(&["-c", "sleep 300 & exec cat"])];
        let (bus, _events) = std::thread::spawn(move || start(&pools)).join().unwrap();
        println!("worker-pid {}", bus.worker_pid(WorkerId::new(0)).unwrap());
        std::io::stdout().flush().unwrap();
        std::thread::sleep(DEADLINE * 6);
        return;
    }
    let mut host = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_host_killed_with_sigkill_leaves_no_worker",
            "--nocapture",
        ])
        .env(HOST_VAR, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid: u32 = BufReader::new(host.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("worker-pid ")?.parse().ok())
        .expect("the host reports its worker");
    let deadline = Instant::now() + DEADLINE;
    let grandchild = loop {
        if let Some(&grandchild) = children_of(pid).first() {
            break grandchild;
        }
        assert!(Instant::now() < deadline, "the worker started no child");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(is_running(pid) && is_running(grandchild));
    host.kill().unwrap();
    host.wait().unwrap();
    let deadline = Instant::now() + DEADLINE;
    for process in [pid, grandchild] {
        while is_running(process) {
            assert!(
                Instant::now() < deadline,
                "process {process} (worker {pid}) outlived its host"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A bus started on a thread that ends, and polled each time from a thread that ends
/// too, keeps its workers and restarts them: no worker's life is tied to a thread.
#[test]
fn workers_outlive_the_threads_that_start_and_poll_the_bus() {
    let _alone = alone();
    let (bus, events) = std::thread::spawn(|| start_echo(2)).join().unwrap();
    let pids: Vec<u32> = (0..2)
        .map(|id| bus.worker_pid(WorkerId::new(id)).unwrap())
        .collect();
    let mut state = (bus, events, Vec::new());
    let poll_on_a_new_thread = |state| {
        std::thread::spawn(move || {
            let (mut bus, mut events, mut seen): (Bus<'static, Running>, _, Vec<Seen>) = state;
            bus.poll(Duration::from_millis(10)).unwrap();
            common::drain(&mut events, &mut seen);
            (bus, events, seen)
        })
        .join()
        .unwrap()
    };
    // Threads end, one after the other: the workers go on.
    for _ in 0..20 {
        state = poll_on_a_new_thread(state);
    }
    assert!(pids.iter().all(|&pid| is_running(pid)), "{pids:?}");
    // A restart forked by a thread that ends at once lives on too.
    let killed = WorkerId::new(0);
    // SAFETY: the bus's unreaped worker.
    assert_eq!(
        unsafe { libc::kill(pids[0] as libc::pid_t, libc::SIGKILL) },
        0
    );
    let deadline = Instant::now() + DEADLINE;
    while !state.2.contains(&Seen::Worker(killed, "restarting".into())) {
        assert!(Instant::now() < deadline, "no restart: {:?}", state.2);
        state = poll_on_a_new_thread(state);
    }
    let restarted = state.0.worker_pid(killed).expect("the restarted worker");
    for _ in 0..20 {
        state = poll_on_a_new_thread(state);
    }
    assert!(is_running(restarted) && is_running(pids[1]));
    let (mut bus, mut events, _) = state;
    for id in 0..4 {
        let answer = common::call(
            &mut bus,
            &mut events,
            &json!({"jsonrpc": "2.0", "id": id, "method": "m"}),
        );
        assert_eq!(answer["id"], id);
    }
}

/// Whether `fd` becomes readable within `timeout`.
fn readable(fd: i32, timeout: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut poll, 1, timeout.as_millis() as libc::c_int) == 1 }
}

/// Polls the bus without waiting until its descriptor is quiet.
fn settle(
    bus: &mut Bus<'_, Running>,
    events: &mut stdiobus_embed::Consumer<'_>,
    fd: i32,
) -> Vec<Seen> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while readable(fd, Duration::ZERO) {
        assert!(Instant::now() < deadline, "the descriptor never went quiet");
        bus.poll(Duration::ZERO).unwrap();
        common::drain(events, &mut seen);
    }
    seen
}

#[test]
fn the_poll_fd_wakes_for_work_and_sleeps_when_idle() {
    let _alone = alone();
    let (mut bus, mut events) = common::start(&[Pool::new("echo", WORKER)]);
    let fd = bus.poll_fd().expect("a descriptor to wait on");
    settle(&mut bus, &mut events, fd);
    assert!(
        !readable(fd, Duration::from_millis(200)),
        "asleep when idle"
    );

    for id in 0..20 {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": "m"});
        bus.send(request.to_string().as_bytes()).unwrap();
        assert!(readable(fd, DEADLINE), "wakes for the response");
        let seen = settle(&mut bus, &mut events, fd);
        assert_eq!(common::responses(&seen, &json!(id)).len(), 1, "{seen:?}");
        assert!(!readable(fd, Duration::from_millis(20)), "asleep again");
    }

    // A worker's exit wakes it too, and one poll without waiting reports it.
    bus.send(br#"{"jsonrpc":"2.0","id":99,"method":"exit"}"#)
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    let first = WorkerId::new(0);
    while !seen
        .iter()
        .any(|s| matches!(s, Seen::Exited(id, _) if *id == first))
    {
        assert!(Instant::now() < deadline, "no exit reported: {seen:?}");
        assert!(readable(fd, DEADLINE), "wakes for the exit");
        seen.extend(settle(&mut bus, &mut events, fd));
    }
    assert!(
        !readable(fd, Duration::from_millis(50)),
        "quiet once reported"
    );
}

/// Each worker leads a process group of its own, and the bus signals the group: a
/// grandchild that holds the worker's pipes neither outlives the bus nor holds up its stop.
#[test]
fn stopping_a_bus_ends_what_its_workers_started() {
    let _alone = alone();
    let (mut bus, mut events) = common::shell_bus("sleep 30 & echo $!; exec cat");
    let mut seen = Vec::new();
    common::poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the grandchild's pid",
        |seen| seen.iter().any(|s| matches!(s, Seen::Message(_))),
    );
    let grandchild: u32 = seen
        .iter()
        .find_map(|s| match s {
            Seen::Message(line) => std::str::from_utf8(line).ok()?.trim().parse().ok(),
            _ => None,
        })
        .expect("the shell prints its background child's pid");
    assert!(is_running(grandchild));

    let stopped = bus
        .stop(Duration::from_secs(1))
        .expect("stopped within its drain time");
    assert_eq!(
        stopped.worker_pid(WorkerId::new(0)),
        None,
        "the worker was reaped, not given up on"
    );
    let deadline = Instant::now() + DEADLINE;
    while is_running(grandchild) {
        assert!(
            Instant::now() < deadline,
            "the grandchild {grandchild} outlived the bus"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A stop driven from the bus's descriptor alone, with no timeout, ends a worker that
/// ignores SIGTERM: the descriptor wakes the loop when the drain time is up, though the
/// worker does nothing, and the poll that follows kills it.
#[test]
fn a_stop_driven_from_the_descriptor_alone_kills_a_worker_that_ignores_sigterm() {
    let _alone = alone();
    let (bus, mut events) = common::shell_bus("trap '' TERM; exec cat");
    let pid = bus.worker_pid(WorkerId::new(0)).unwrap();
    let mut stopping = bus
        .begin_stop(Duration::from_millis(200))
        .map_err(|failed| failed.error)
        .unwrap();
    let fd = stopping.poll_fd().expect("a descriptor to wait on");
    let (alarm, alarm_in) = std::os::unix::net::UnixStream::pair().unwrap();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(DEADLINE).is_err() {
            let _ = (&alarm).write_all(b"!");
        }
    });
    let stopped = loop {
        stopping = match stopping.try_finish() {
            Ok(stopped) => break stopped,
            Err(stopping) => stopping,
        };
        let mut fds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: alarm_in.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds; no timeout, as an idle event loop waits.
        assert!(unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } > 0);
        assert_eq!(fds[1].revents, 0, "the loop slept through the drain time");
        stopping.poll_stop(Duration::ZERO).unwrap();
        common::drain(&mut events, &mut Vec::new());
    };
    done.send(()).unwrap();
    watchdog.join().unwrap();
    assert!(!is_running(pid), "the worker was killed");
    drop(stopped);
}
