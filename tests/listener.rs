//! Listener clients on real loopback sockets: TCP on 127.0.0.1 and Unix sockets under a
//! temporary directory.
//!
//! What the kernel does with them (observed, with the crates.io 1.1.1 archive; its library
//! mode is the same code in the PyPI 2.2.1 archive). These tests pin it, so that an archive
//! that changes any of it is noticed:
//!
//! - A connection and a disconnection are events, with the kernel's client id, and the
//!   peer address (`"unix"` for a Unix socket client).
//! - A JSON line from a client goes to a worker, like the host's own `send`.
//! - The worker's response goes to the host as `Event::Message`, never to the client, with
//!   or without a `sessionId`. The kernel tracks the request (`pending_count` grows by one
//!   per client request) but never matches the response: its library-mode handler for
//!   worker output calls `on_message` and nothing else. A client hears nothing at all.
//! - A line that is not JSON (a `Content-Length:` header, say) closes that client.
//! - A listener that cannot be set up fails `start`, not `create`: the workers were
//!   already forked, the kernel kills them and ends STOPPED.
//! - A regular file at the Unix socket path is deleted and replaced by the socket.

mod common;

use std::ffi::{CStr, CString};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{DEADLINE, Seen, WORKER, config, poll_until, responses, ring};
use serde_json::json;
use stdiobus_embed::{
    Bus, ClientId, Consumer, Created, Error, ErrorCode, Failed, Limits, Listener, Pool, Running,
    WorkerId,
};

/// How long a client is watched for bytes it should never get.
const QUIET: Duration = Duration::from_millis(300);

/// A port nobody listens on right now (the kernel cannot be asked for port 0).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh, empty directory for this test's sockets, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("stdiobus-listener-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A path as a C string that lives for the whole test process, as the bus borrows it.
fn c_path(path: &Path) -> &'static CStr {
    Box::leak(
        CString::new(path.to_str().unwrap())
            .unwrap()
            .into_boxed_c_str(),
    )
}

fn created(listener: Listener<'static>) -> (Bus<'static, Created>, Consumer<'static>) {
    let (producer, events) = ring();
    let options = common::options().listener(listener);
    let pools = [Pool::new("echo", WORKER)];
    let bus = Bus::create(config(&pools, &Limits::default()), options, producer).unwrap();
    (bus, events)
}

fn started(listener: Listener<'static>) -> (Bus<'static, Running>, Consumer<'static>) {
    let (bus, events) = created(listener);
    (bus.start().unwrap(), events)
}

fn tcp_bus(port: u16) -> (Bus<'static, Running>, Consumer<'static>) {
    started(Listener::Tcp {
        host: c"127.0.0.1",
        port,
    })
}

fn connected(seen: &[Seen]) -> Vec<(ClientId, String)> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::ClientConnected(id, peer) => Some((*id, peer.clone())),
            _ => None,
        })
        .collect()
}

fn disconnected(seen: &[Seen]) -> Vec<ClientId> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::ClientDisconnected(id, _) => Some(*id),
            _ => None,
        })
        .collect()
}

fn errors(seen: &[Seen]) -> Vec<(ErrorCode, String)> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Error(code, text) => Some((*code, text.clone())),
            _ => None,
        })
        .collect()
}

/// Keeps polling the bus for [`QUIET`] and asserts that none of `clients` receives a byte
/// or is closed meanwhile.
fn assert_clients_hear_nothing<C: Read>(
    bus: &mut Bus<'_, Running>,
    events: &mut Consumer<'_>,
    seen: &mut Vec<Seen>,
    clients: &mut [C],
) {
    let until = Instant::now() + QUIET;
    while Instant::now() < until {
        bus.poll(Duration::from_millis(10)).unwrap();
        common::drain(events, seen);
        for (i, client) in clients.iter_mut().enumerate() {
            let mut buf = [0u8; 1024];
            match client.read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Ok(0) => panic!("client {i} was closed"),
                Ok(n) => panic!(
                    "client {i} received {:?}",
                    String::from_utf8_lossy(&buf[..n])
                ),
                Err(e) => panic!("client {i}: {e}"),
            }
        }
    }
}

/// A start that failed: the error, and the events seen. The kernel stopped itself with a
/// worker connection still open, and destroying such an instance crashes the archive
/// (SIGSEGV in `stdio_bus_router_invalidate_worker`, observed). Dropping the bus that
/// comes back must therefore neither crash nor leave a worker behind.
fn failed_start(listener: Listener<'static>) -> (Error, Vec<Seen>) {
    let (bus, mut events) = created(listener);
    let Err(Failed { error, value }) = bus.start() else {
        panic!("start succeeded");
    };
    // Observed: the kernel has stopped itself; the workers it forked were killed.
    assert_eq!(value.kernel_state(), stdiobus_embed::KernelState::Stopped);
    let pids: Vec<u32> = (0..4)
        .filter_map(|id| value.worker_pid(WorkerId::new(id)))
        .collect();
    drop(value);
    for pid in pids {
        assert!(
            !common::process_exists(pid.into()),
            "the failed start's workers were collected"
        );
    }
    let mut seen = Vec::new();
    common::drain(&mut events, &mut seen);
    (error, seen)
}

#[test]
fn a_tcp_client_connecting_and_leaving_are_events() {
    let port = free_port();
    let (mut bus, mut events) = tcp_bus(port);
    assert!(bus.poll_fd().is_some());

    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let peer = client.local_addr().unwrap().to_string();
    let mut seen = Vec::new();
    poll_until(&mut bus, &mut events, &mut seen, "the connection", |seen| {
        connected(seen).iter().any(|(_, p)| *p == peer)
    });
    assert_eq!(bus.client_count(), 1);

    drop(client);
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the disconnection",
        |seen| !disconnected(seen).is_empty(),
    );
    assert_eq!(disconnected(&seen), [connected(&seen)[0].0]);
    assert!(
        seen.contains(&Seen::ClientDisconnected(
            connected(&seen)[0].0,
            "closed".into()
        )),
        "{seen:#?}"
    );
    assert_eq!(bus.client_count(), 0);
    assert_eq!(bus.stats().client_connects, 1);
    assert_eq!(bus.stats().client_disconnects, 1);
}

#[test]
fn a_unix_client_connecting_and_leaving_are_events() {
    let dir = TempDir::new("unix-events");
    let path = dir.join("bus.sock");
    let (mut bus, mut events) = started(Listener::Unix {
        path: c_path(&path),
    });
    assert!(bus.poll_fd().is_some());
    assert!(path.exists(), "the socket file is there once started");

    let client = UnixStream::connect(&path).unwrap();
    let mut seen = Vec::new();
    poll_until(&mut bus, &mut events, &mut seen, "the connection", |seen| {
        !connected(seen).is_empty()
    });
    // Observed: a Unix socket client's peer is just "unix".
    let (id, peer) = connected(&seen).remove(0);
    assert_eq!(peer, "unix");
    assert_eq!(bus.client_count(), 1);

    drop(client);
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the disconnection",
        |seen| !disconnected(seen).is_empty(),
    );
    assert_eq!(disconnected(&seen), [id]);
    assert_eq!(bus.client_count(), 0);
    assert_eq!(bus.stats().client_connects, 1);
    assert_eq!(bus.stats().client_disconnects, 1);
}

#[test]
fn several_tcp_clients_at_once_reach_the_workers_and_the_host_gets_the_responses() {
    let port = free_port();
    let (mut bus, mut events) = tcp_bus(port);
    let mut clients: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let peers: Vec<String> = clients
        .iter()
        .map(|c| c.local_addr().unwrap().to_string())
        .collect();
    let mut seen = Vec::new();
    poll_until(&mut bus, &mut events, &mut seen, "4 connections", |seen| {
        connected(seen).len() == 4
    });
    let mut ids: Vec<ClientId> = connected(&seen).iter().map(|(id, _)| *id).collect();
    let mut seen_peers: Vec<String> = connected(&seen).into_iter().map(|(_, p)| p).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "distinct client ids: {seen:#?}");
    seen_peers.sort();
    let mut expected_peers = peers.clone();
    expected_peers.sort();
    assert_eq!(seen_peers, expected_peers);
    assert_eq!(bus.client_count(), 4);

    // Every client sends one request; two of them carry a sessionId.
    for (i, client) in clients.iter_mut().enumerate() {
        let mut request = json!({"jsonrpc": "2.0", "id": format!("c{i}"), "method": "m"});
        if i % 2 == 1 {
            request["sessionId"] = json!(format!("s{i}"));
        }
        client.write_all(format!("{request}\n").as_bytes()).unwrap();
        client.set_nonblocking(true).unwrap();
    }
    poll_until(&mut bus, &mut events, &mut seen, "4 responses", |seen| {
        (0..4).all(|i| responses(seen, &json!(format!("c{i}"))).len() == 1)
    });
    // Observed: the responses reach the host as messages and no client hears anything,
    // sessionId or not.
    assert_clients_hear_nothing(&mut bus, &mut events, &mut seen, &mut clients);
    for i in 0..4 {
        let response = &responses(&seen, &json!(format!("c{i}")))[0];
        assert_eq!(response["result"]["method"], "m");
    }
    // Observed: each request is tracked as pending and never matched; sessions count.
    assert_eq!(bus.pending_count(), 4);
    assert_eq!(bus.session_count(), 2);
    assert_eq!(bus.stats().messages_in, 4);

    // Two leave: their events come with their ids, and their pending requests go.
    let leaving: Vec<ClientId> = peers[..2]
        .iter()
        .map(|peer| connected(&seen).iter().find(|(_, p)| p == peer).unwrap().0)
        .collect();
    clients.drain(..2);
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "2 disconnections",
        |seen| disconnected(seen).len() == 2,
    );
    let mut gone = disconnected(&seen);
    gone.sort();
    assert_eq!(gone, leaving);
    assert_eq!(bus.client_count(), 2);
    assert_eq!(bus.pending_count(), 2);

    clients.clear();
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "4 disconnections",
        |seen| disconnected(seen).len() == 4,
    );
    assert_eq!(bus.client_count(), 0);
    assert_eq!(bus.pending_count(), 0);
    assert_eq!(bus.session_count(), 0);
    assert_eq!(bus.stats().client_disconnects, 4);
}

#[test]
fn a_unix_client_request_is_answered_to_the_host_not_the_client() {
    let dir = TempDir::new("unix-traffic");
    let path = dir.join("bus.sock");
    let (mut bus, mut events) = started(Listener::Unix {
        path: c_path(&path),
    });
    let mut client = UnixStream::connect(&path).unwrap();
    client
        .write_all(
            concat!(
                r#"{"jsonrpc":"2.0","id":1,"method":"m"}"#,
                "\n",
                r#"{"jsonrpc":"2.0","id":2,"method":"m","sessionId":"s"}"#,
                "\n"
            )
            .as_bytes(),
        )
        .unwrap();
    client.set_nonblocking(true).unwrap();
    let mut seen = Vec::new();
    poll_until(&mut bus, &mut events, &mut seen, "2 responses", |seen| {
        responses(seen, &json!(1)).len() == 1 && responses(seen, &json!(2)).len() == 1
    });
    // Observed, as over TCP.
    assert_clients_hear_nothing(&mut bus, &mut events, &mut seen, &mut [client]);
    assert_eq!(responses(&seen, &json!(2))[0]["sessionId"], "s");
}

#[test]
fn a_client_that_disconnects_mid_request_leaves_the_bus_working() {
    let port = free_port();
    let (mut bus, mut events) = tcp_bus(port);
    let mut seen = Vec::new();

    // One client leaves halfway through writing a line, another while the worker is
    // still working on its request.
    let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
    half.write_all(br#"{"jsonrpc":"2.0","id":"half","meth"#)
        .unwrap();
    let mut waiting = TcpStream::connect(("127.0.0.1", port)).unwrap();
    waiting
        .write_all(
            b"{\"jsonrpc\":\"2.0\",\"id\":\"slow\",\"method\":\"sleep\",\"params\":{\"ms\":300}}\n",
        )
        .unwrap();
    poll_until(&mut bus, &mut events, &mut seen, "2 connections", |seen| {
        connected(seen).len() == 2
    });
    let started_at = Instant::now();
    drop(half);
    drop(waiting);
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "2 disconnections",
        |seen| disconnected(seen).len() == 2,
    );
    assert_eq!(bus.client_count(), 0);
    assert_eq!(bus.pending_count(), 0);

    // Observed: the worker's response still arrives, at the host, as it always does.
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the slow response",
        |seen| !responses(seen, &json!("slow")).is_empty(),
    );
    assert!(started_at.elapsed() < DEADLINE);
    // The half line never reached a worker, and nothing went wrong.
    assert!(responses(&seen, &json!("half")).is_empty());
    assert_eq!(errors(&seen), []);

    // The bus goes on serving new clients and the host.
    let mut next = TcpStream::connect(("127.0.0.1", port)).unwrap();
    next.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":\"next\",\"method\":\"m\"}\n")
        .unwrap();
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the next response",
        |seen| !responses(seen, &json!("next")).is_empty(),
    );
    let host = common::call(
        &mut bus,
        &mut events,
        &json!({"jsonrpc": "2.0", "id": "host", "method": "m"}),
    );
    assert_eq!(host["result"]["method"], "m");
    assert_eq!(bus.client_count(), 1);
}

#[test]
fn a_client_line_that_is_not_json_closes_that_client_only() {
    let port = free_port();
    let (mut bus, mut events) = tcp_bus(port);
    let mut framed = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut other = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut seen = Vec::new();
    poll_until(&mut bus, &mut events, &mut seen, "2 connections", |seen| {
        connected(seen).len() == 2
    });
    let framed_id = connected(&seen)
        .into_iter()
        .find(|(_, p)| *p == framed.local_addr().unwrap().to_string())
        .unwrap()
        .0;

    // LSP-style framing is not what the kernel reads: it closes the connection.
    let body = r#"{"jsonrpc":"2.0","id":4,"method":"m"}"#;
    write!(framed, "Content-Length: {}\r\n\r\n{body}\n", body.len()).unwrap();
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the disconnection",
        |seen| !disconnected(seen).is_empty(),
    );
    assert_eq!(disconnected(&seen), [framed_id]);
    framed
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut rest = Vec::new();
    framed.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"", "closed without a word");
    assert_eq!(bus.stats().routing_errors, 1);

    other
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"m\"}\n")
        .unwrap();
    poll_until(&mut bus, &mut events, &mut seen, "the response", |seen| {
        !responses(seen, &json!(5)).is_empty()
    });
    assert_eq!(bus.client_count(), 1);
}

#[test]
fn a_tcp_port_already_in_use_fails_at_start() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    // `create` accepts it; the kernel binds only in `start`.
    let (error, seen) = failed_start(Listener::Tcp {
        host: c"127.0.0.1",
        port,
    });
    assert_eq!(error, Error::Kernel(ErrorCode::Generic));
    assert!(
        errors(&seen).contains(&(
            ErrorCode::Generic,
            "Failed to bind TCP socket: Address already in use".into()
        )),
        "{seen:#?}"
    );
    assert!(errors(&seen).contains(&(ErrorCode::Generic, "Failed to setup listener".into())));
    // The port's owner is untouched.
    assert_eq!(held.local_addr().unwrap().port(), port);
}

#[test]
fn a_tcp_host_that_is_not_a_numeric_ipv4_address_is_refused_at_create() {
    // Observed: the kernel takes numeric IPv4 only, and said so only at `start`, as a
    // configuration error.
    for host in [c"localhost", c"::1"] {
        let (producer, _events) = ring();
        let options = common::options().listener(Listener::Tcp {
            host,
            port: free_port(),
        });
        let pools = [Pool::new("echo", WORKER)];
        let error = Bus::create(config(&pools, &Limits::default()), options, producer)
            .unwrap_err()
            .error;
        assert!(
            matches!(error, Error::Listener(reason) if reason.contains("IPv4")),
            "{host:?}: {error}"
        );
    }
}

#[test]
fn a_unix_socket_path_in_a_missing_directory_fails_at_start() {
    let dir = TempDir::new("missing");
    let (error, seen) = failed_start(Listener::Unix {
        path: c_path(&dir.join("no/such/dir/bus.sock")),
    });
    assert_eq!(error, Error::Kernel(ErrorCode::Generic));
    assert!(
        errors(&seen).contains(&(
            ErrorCode::Generic,
            "Failed to bind Unix socket: No such file or directory".into()
        )),
        "{seen:#?}"
    );
}

/// What `create` says to a Unix listener at `path`, which it must refuse.
fn refused_at_create(path: &Path) -> Error {
    let (producer, _events) = ring();
    let options = common::options().listener(Listener::Unix { path: c_path(path) });
    let pools = [Pool::new("echo", WORKER)];
    Bus::create(config(&pools, &Limits::default()), options, producer)
        .unwrap_err()
        .error
}

#[test]
fn a_unix_socket_path_that_is_a_directory_is_refused_at_create() {
    let dir = TempDir::new("is-a-dir");
    let path = dir.join("taken");
    std::fs::create_dir(&path).unwrap();
    let error = refused_at_create(&path);
    assert!(matches!(error, Error::Listener(_)), "{error}");
    assert!(path.is_dir(), "the directory is left alone");
}

#[test]
fn a_file_at_the_unix_socket_path_is_refused_not_deleted() {
    let dir = TempDir::new("is-a-file");
    let path = dir.join("data.txt");
    std::fs::write(&path, "precious").unwrap();
    // The kernel unlinks whatever is at the path before it binds (observed), so the bus
    // refuses such a path before the kernel sees it.
    let error = refused_at_create(&path);
    assert!(matches!(error, Error::Listener(_)), "{error}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[test]
fn a_unix_socket_path_where_a_server_listens_is_refused_and_left_to_it() {
    let dir = TempDir::new("live-server");
    let path = dir.join("taken.sock");
    let server = UnixListener::bind(&path).unwrap();
    let error = refused_at_create(&path);
    assert!(matches!(error, Error::Listener(_)), "{error}");
    let _client = UnixStream::connect(&path).expect("the server still has its path");
    server.accept().unwrap();
}

#[test]
fn a_socket_file_nobody_listens_on_is_taken_over() {
    let dir = TempDir::new("stale-socket");
    let path = dir.join("stale.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "a server that ended left its socket file");
    let (mut bus, mut events) = started(Listener::Unix {
        path: c_path(&path),
    });
    let _client = UnixStream::connect(&path).unwrap();
    let mut seen = Vec::new();
    poll_until(&mut bus, &mut events, &mut seen, "the connection", |seen| {
        !connected(seen).is_empty()
    });
}

/// Listener clients' lines go through the kernel's own router, not through `send`: it
/// spreads them round-robin over the running workers of the pool (a `sessionId` sticks to
/// one), and a worker the bus restarted is among them, because the kernel writes to the
/// pipes of the process it restarted.
#[test]
fn client_requests_reach_every_worker_restarted_ones_included() {
    let port = free_port();
    let (producer, mut events) = ring();
    let options = common::options().listener(Listener::Tcp {
        host: c"127.0.0.1",
        port,
    });
    let pools = [Pool::new("echo", WORKER).instances(2)];
    let mut bus = Bus::create(config(&pools, &Limits::default()), options, producer)
        .unwrap()
        .start()
        .unwrap();
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut answered_by = Answers::new();
    for i in 0..6 {
        let request = json!({"jsonrpc": "2.0", "id": format!("a{i}"), "method": "m"});
        client.write_all(format!("{request}\n").as_bytes()).unwrap();
    }
    wait_for(&mut bus, &mut events, 6, &mut answered_by);
    let workers: std::collections::HashSet<Option<WorkerId>> =
        answered_by.values().map(|(worker, _)| *worker).collect();
    let (first, second) = (WorkerId::new(0), WorkerId::new(1));
    assert_eq!(
        workers,
        [Some(first), Some(second)].into(),
        "{answered_by:?}"
    );

    common::signal_worker(&bus, first, libc::SIGKILL);
    common::wait_for_worker(&mut bus, &mut events, first, "started");
    let restarted = bus.worker_pid(first).unwrap();
    for i in 0..6 {
        let request = json!({"jsonrpc": "2.0", "id": format!("b{i}"), "method": "m"});
        client.write_all(format!("{request}\n").as_bytes()).unwrap();
    }
    wait_for(&mut bus, &mut events, 12, &mut answered_by);
    assert!(
        answered_by
            .iter()
            .any(|(id, answer)| id.starts_with('b')
                && *answer == (Some(first), u64::from(restarted))),
        "the restarted worker got no client request: {answered_by:?}"
    );
}

/// Who answered each request: the worker the bus says wrote the line, and the pid in it.
type Answers = std::collections::HashMap<String, (Option<WorkerId>, u64)>;

/// Polls until `count` requests are answered.
fn wait_for(
    bus: &mut Bus<'_, Running>,
    events: &mut Consumer<'_>,
    count: usize,
    answers: &mut Answers,
) {
    let deadline = Instant::now() + DEADLINE;
    while answers.len() < count {
        assert!(
            Instant::now() < deadline,
            "{} of {count} answers",
            answers.len()
        );
        bus.poll(Duration::from_millis(20)).unwrap();
        events.drain(|event| {
            if let stdiobus_embed::Event::Message { worker, line } = event
                && let Ok(json) = serde_json::from_slice::<serde_json::Value>(line.as_bytes())
                && let Some(id) = json["id"].as_str()
            {
                let pid = json["result"]["pid"].as_u64().unwrap_or(0);
                answers.insert(id.to_owned(), (worker, pid));
            }
        });
    }
}
