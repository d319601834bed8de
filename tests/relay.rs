//! `stdiobus-relay` as a client sees it: a process on the other end of two pipes, with the
//! crate's real echo worker behind it. (`.ci/run` also drives it with a real MCP client in
//! front of real MCP servers: `tests/mcp/relay.mjs`.)

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::{DEADLINE, WORKER, process_exists};
use serde_json::{Value, json};

const RELAY: &str = env!("CARGO_BIN_EXE_stdiobus-relay");

/// A relay process, its stdin, and its stdout line by line.
struct Relay {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Receiver<String>,
}

impl Relay {
    /// Starts the relay over a configuration file holding `config`.
    fn start(config: &str, args: &[&str]) -> Self {
        let path = std::env::temp_dir().join(format!(
            "stdiobus-relay-test-{}-{}.json",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(RELAY)
            .arg(&path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the relay starts");
        let lines = forward_lines(child.stdout.take().unwrap());
        let stderr = forward_lines(child.stderr.take().unwrap());
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        }
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line on stdout, parsed; `None` once stdout has closed.
    fn next(&self) -> Option<Value> {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => Some(serde_json::from_str(&line).expect("JSON on stdout")),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!("no line from the relay within {DEADLINE:?}"),
        }
    }

    /// Waits for the relay to exit.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the relay did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Everything the relay wrote on stderr, once it has exited: up to the end of the
    /// stream, which comes when the relay and its workers have all closed it.
    fn stderr(&self) -> String {
        let deadline = Instant::now() + DEADLINE;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Disconnected) => return lines.join("\n"),
                Err(RecvTimeoutError::Timeout) => panic!("stderr still open: {lines:?}"),
            }
        }
    }

    /// The `count` worker processes under the relay, once they all run.
    fn workers(&self, count: usize) -> Vec<i64> {
        let pid = self.child.id();
        let exe = |pid: &str| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        // A child still running the relay's own code is no worker yet: one forked and not
        // exec'd, or the step on the way to the guardian, which is nobody's child; nor is a
        // child that has ended (a zombie has no program to read).
        let relay = exe(&pid.to_string());
        let deadline = Instant::now() + DEADLINE;
        loop {
            let workers: Vec<i64> =
                std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter(|child| exe(child).is_some_and(|exe| Some(exe) != relay))
                    .map(|pid| pid.parse().unwrap())
                    .collect();
            if workers.len() == count {
                return workers;
            }
            assert!(Instant::now() < deadline, "workers: {workers:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for a line on stderr that contains `text`.
    fn stderr_line(&self, text: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(error) => panic!("no stderr line with {text:?}: {error}"),
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn forward_lines(from: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

/// A configuration of one pool of `instances` echo workers, with `limits`.
fn echo_config(instances: u32, limits: Value) -> String {
    json!({
        "pools": [{"id": "echo", "command": WORKER, "instances": instances}],
        "limits": limits,
    })
    .to_string()
}

fn request(id: impl Into<Value>, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id.into(), "method": method, "params": params})
}

#[test]
fn requests_are_answered_and_the_end_of_input_stops_the_relay_cleanly() {
    let mut relay = Relay::start(&echo_config(2, json!({})), &[]);
    for id in 0..20 {
        relay.send(&request(id, "hello", json!({"text": "é ✓"})));
    }
    let mut ids: Vec<i64> = (0..20)
        .map(|_| relay.next().unwrap()["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..20).collect::<Vec<_>>());
    let workers = relay.workers(2);
    relay.stdin = None;
    assert_eq!(relay.next(), None, "stdout closes");
    assert!(relay.wait().success());
    // Each worker saw the end of its input and exited by itself.
    let stderr = relay.stderr();
    assert_eq!(
        stderr.matches("exited (exit code 0)").count(),
        2,
        "{stderr}"
    );
    assert!(workers.iter().all(|&pid| !process_exists(pid)));
}

#[test]
fn a_request_whose_worker_dies_gets_an_error_and_a_restarted_worker_serves_on() {
    let mut relay = Relay::start(&echo_config(1, json!({})), &[]);
    relay.send(&request("bye", "exit", json!({})));
    let error = relay.next().unwrap();
    assert_eq!(error["id"], "bye");
    assert_eq!(error["error"]["code"], -32001, "{error}");
    // The worker exited with 0, which the kernel does not restart: none is left.
    assert_eq!(relay.next(), None, "stdout closes");
    assert_eq!(relay.wait().code(), Some(1));
    let stderr = relay.stderr();
    assert!(stderr.contains("no worker is left"), "{stderr}");

    let mut relay = Relay::start(&echo_config(1, json!({"max_restarts": 5})), &[]);
    let pid = relay.workers(1)[0];
    relay.send(&request(1, "sleep", json!({"ms": 10_000})));
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: signalling the relay's own worker.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let error = relay.next().unwrap();
    assert_eq!(
        (error["id"].clone(), error["error"]["code"].clone()),
        (json!(1), json!(-32001))
    );
    relay.send(&request(2, "hello", json!({})));
    let answer = relay.next().unwrap();
    assert_eq!(answer["id"], 2);
    assert_ne!(answer["result"]["pid"], pid, "a new process answers");
}

#[test]
fn a_crashed_server_with_no_restarts_ends_the_relay_within_a_second() {
    let mut relay = Relay::start(&echo_config(1, json!({"max_restarts": 0})), &[]);
    relay.send(&request(1, "sleep", json!({"ms": 10_000})));
    std::thread::sleep(Duration::from_millis(50));
    let killed = Instant::now();
    // SAFETY: signalling the relay's own worker.
    unsafe { libc::kill(relay.workers(1)[0] as i32, libc::SIGKILL) };
    let error = relay.next().unwrap();
    assert_eq!(error["id"], 1);
    assert_eq!(relay.next(), None, "stdout closes");
    assert_eq!(relay.wait().code(), Some(1));
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "{:?}",
        killed.elapsed()
    );
}

#[test]
fn a_command_that_cannot_be_executed_stops_the_relay_at_start() {
    let config =
        json!({"pools": [{"id": "ghost", "command": "/nonexistent/server", "instances": 1}]});
    let mut relay = Relay::start(&config.to_string(), &[]);
    assert_eq!(relay.wait().code(), Some(1));
    let stderr = relay.stderr();
    assert!(
        stderr.contains("could not execute its command: no such file"),
        "{stderr}"
    );
    assert_eq!(relay.next(), None);
}

#[test]
fn unreadable_and_overlong_lines_are_answered_with_errors() {
    let mut relay = Relay::start(&echo_config(1, json!({})), &["--max-line", "4096"]);
    let stdin = relay.stdin.as_mut().unwrap();
    writeln!(stdin, "this is not json").unwrap();
    writeln!(stdin, "{}", "x".repeat(5000)).unwrap();
    stdin.flush().unwrap();
    let parse = relay.next().unwrap();
    assert_eq!(
        (parse["id"].clone(), parse["error"]["code"].clone()),
        (Value::Null, json!(-32700))
    );
    let long = relay.next().unwrap();
    assert_eq!(long["error"]["code"], -32600, "{long}");
    // Over --max-line when the line is read: refused with an error, and nothing is cut.
    let mut relay = Relay::start(&echo_config(1, json!({})), &["--max-line", "100000"]);
    relay.send(&request(7, "hello", json!({"pad": "p".repeat(200_000)})));
    let refused = relay.next().unwrap();
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    relay.send(&request(8, "hello", json!({})));
    assert_eq!(relay.next().unwrap()["id"], 8, "and the relay serves on");
}

/// MCP servers refuse requests until they have had the client's handshake, which the
/// client makes once: the relay gives it to every instance, and again to a restarted one.
#[test]
fn every_server_process_gets_the_clients_handshake_restarted_ones_too() {
    let config = json!({
        "pools": [{"id": "mcp", "command": WORKER, "args": ["--mcp"], "instances": 3}],
        "limits": {"max_restarts": 5},
    });
    let mut relay = Relay::start(&config.to_string(), &[]);
    let workers = relay.workers(3);
    relay.send(&request(
        0,
        "initialize",
        json!({"protocolVersion": "2025-06-18"}),
    ));
    let init = relay.next().unwrap();
    assert_eq!(init["id"], 0, "{init}");
    assert!(init["result"].is_object(), "{init}");
    relay.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let answered = |relay: &mut Relay, ids: std::ops::Range<i64>| {
        for id in ids.clone() {
            relay.send(&request(id, "tools/list", json!({})));
        }
        let mut seen: Vec<Value> = ids.map(|_| relay.next().unwrap()).collect();
        seen.sort_by_key(|m| m["id"].as_i64());
        seen
    };
    let first = answered(&mut relay, 1..10);
    assert!(first.iter().all(|m| m["result"].is_object()), "{first:?}");
    let pids: std::collections::BTreeSet<i64> = first
        .iter()
        .map(|m| m["result"]["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "every instance answered");

    // SAFETY: signalling the relay's own worker.
    unsafe { libc::kill(workers[0] as i32, libc::SIGKILL) };
    relay.stderr_line("restarting");
    relay.stderr_line("started");
    let after = answered(&mut relay, 10..19);
    assert!(after.iter().all(|m| m["result"].is_object()), "{after:?}");
    assert!(
        after.iter().all(|m| m["result"]["pid"] != workers[0]),
        "the new process answers: {after:?}"
    );
    let pids: std::collections::BTreeSet<i64> = after
        .iter()
        .map(|m| m["result"]["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "every process answered: {after:?}");
}

/// A worker's answer longer than `--max-line` cannot be delivered: the client gets an
/// error with the request's id, read from the line's start (this crate's echo worker) or
/// its end (where the TypeScript MCP SDK puts it).
#[test]
fn an_answer_longer_than_the_line_limit_gets_an_error_with_its_id() {
    let mut relay = Relay::start(&echo_config(1, json!({})), &["--max-line", "100000"]);
    // The request fits; its echo, with the worker's envelope around it, does not.
    let envelope = request(7, "hello", json!({"pad": ""})).to_string().len();
    relay.send(&request(
        7,
        "hello",
        json!({"pad": "p".repeat(99_990 - envelope)}),
    ));
    let refused = relay.next().unwrap();
    assert_eq!(
        (refused["id"].clone(), refused["error"]["code"].clone()),
        (json!(7), json!(-32004)),
        "{refused}"
    );
    relay.send(&request(8, "hello", json!({})));
    assert_eq!(relay.next().unwrap()["id"], 8, "and the relay serves on");

    let id_last = "while read -r _; do printf '{\"result\":\"'; \
                   head -c 200000 /dev/zero | tr '\\0' x; \
                   printf '\",\"jsonrpc\":\"2.0\",\"id\":\"q-1\"}\\n'; done";
    let config = json!({"pools": [{"id": "last", "command": "/bin/sh", "args": ["-c", id_last], "instances": 1}]});
    let mut relay = Relay::start(&config.to_string(), &["--max-line", "100000"]);
    relay.send(&request("q-1", "anything", json!({})));
    let refused = relay.next().unwrap();
    assert_eq!(
        (refused["id"].clone(), refused["error"]["code"].clone()),
        (json!("q-1"), json!(-32004)),
        "{refused}"
    );
}

/// Lines larger than any pipe go both ways whole: the request waits in the send buffer
/// while the worker reads it, the answer comes through the overflow handler.
#[test]
fn lines_of_many_megabytes_go_both_ways_whole() {
    let mut relay = Relay::start(&echo_config(1, json!({})), &[]);
    // Larger than any pipe: 1 MiB without privileges, 4 MiB with them.
    let pad = "abcdefghijklmnopqrstuvwxyz".repeat((6 << 20) / 26);
    relay.send(&request(1, "big", json!({"pad": pad})));
    relay.send(&request(2, "small", json!({})));
    let big = relay.next().unwrap();
    assert_eq!(big["id"], 1);
    assert_eq!(big["result"]["params"]["pad"].as_str(), Some(pad.as_str()));
    assert_eq!(relay.next().unwrap()["id"], 2, "and in order");
}

/// At the end of input the relay waits for the answers still due, but not for a request
/// the client cancelled: then it closes the workers' stdin at once.
#[test]
fn the_drain_waits_for_answers_but_not_for_cancelled_requests() {
    let mut relay = Relay::start(&echo_config(2, json!({})), &["--drain-timeout", "3"]);
    relay.workers(2);
    // Round-robin: worker 0 answers in 300 ms, worker 1 would take a minute.
    relay.send(&request(1, "sleep", json!({"ms": 300})));
    relay.send(&request(2, "sleep", json!({"ms": 60_000})));
    relay.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}}),
    );
    relay.stdin = None;
    let answer = relay.next().unwrap();
    assert_eq!(answer["id"], 1, "the answer still due came out");
    let answered = Instant::now();
    // Worker 0, idle, exits as soon as its stdin closes: right after that answer, not
    // after the 3 s drain timeout that waiting for request 2 would take.
    relay.stderr_line("worker 0 exited (exit code 0)");
    assert!(
        answered.elapsed() < Duration::from_secs(2),
        "{:?}",
        answered.elapsed()
    );
    // Worker 1 sleeps through the end of its input: SIGTERM ends it after 3 s more. The
    // cancelled request gets no answer, as the client expects.
    assert_eq!(relay.next(), None);
    assert!(relay.wait().success());
}

#[test]
fn sigterm_stops_the_relay_and_its_workers() {
    let mut relay = Relay::start(&echo_config(2, json!({})), &["--drain-timeout", "1"]);
    relay.send(&request(1, "hello", json!({})));
    assert_eq!(relay.next().unwrap()["id"], 1);
    let workers = relay.workers(2);
    relay.send(&request(2, "sleep", json!({"ms": 60_000})));
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: signalling the relay process this test started.
    unsafe { libc::kill(relay.child.id() as i32, libc::SIGTERM) };
    let error = relay.next().unwrap();
    assert_eq!(error["id"], 2);
    assert_eq!(error["error"]["code"], -32003, "{error}");
    assert!(relay.wait().success());
    common::wait_gone(&workers);
}

#[test]
fn a_configuration_file_with_unicode_escapes_works() {
    let config = format!(
        r#"{{"pools":[{{"id":"caf\u00e9","command":{},"args":["--name","\u00e9t\u00e9"],"instances":1}}]}}"#,
        json!(WORKER)
    );
    let mut relay = Relay::start(&config, &[]);
    relay.send(&request(1, "hello", json!({})));
    assert_eq!(relay.next().unwrap()["result"]["worker"], "été");
}

#[test]
fn a_request_not_answered_in_time_gets_an_error_and_its_late_answer_is_dropped() {
    let mut relay = Relay::start(&echo_config(1, json!({})), &["--request-timeout", "0.3"]);
    let sent = Instant::now();
    relay.send(&request("lost", "hang", json!({})));
    relay.send(&request(2, "sleep", json!({"ms": 800})));
    let mut errors = Vec::new();
    for _ in 0..2 {
        let error = relay.next().unwrap();
        assert_eq!(error["error"]["code"], -32005, "{error}");
        errors.push(error["id"].clone());
    }
    assert!(
        sent.elapsed() >= Duration::from_millis(300),
        "answered early"
    );
    assert!(
        errors.contains(&json!(2)) && errors.contains(&json!("lost")),
        "{errors:?}"
    );
    // The late answer to 2 comes from the server and goes nowhere; a new request is
    // answered as usual.
    relay.stderr_line("came after --request-timeout and was dropped (1 late answers so far)");
    relay.send(&request(3, "hello", json!({})));
    let answer = relay.next().unwrap();
    assert_eq!(answer["id"], 3, "{answer}");
    assert!(answer.get("result").is_some());
    relay.stdin = None;
    assert_eq!(relay.next(), None, "stdout closes");
    assert!(relay.wait().success());
}

#[test]
fn a_server_that_does_not_answer_its_ping_is_restarted() {
    let args = ["--ping-interval", "0.2", "--request-timeout", "0.5"];
    let mut relay = Relay::start(&echo_config(1, json!({"max_restarts": 5})), &args);
    let pid = relay.workers(1)[0];
    // Pings go and are answered meanwhile, and the client sees none of them.
    std::thread::sleep(Duration::from_millis(500));
    relay.send(&request(1, "hello", json!({})));
    let answer = relay.next().unwrap();
    assert_eq!(
        (answer["id"].clone(), answer["result"]["pid"].clone()),
        (json!(1), json!(pid))
    );
    // SAFETY: signalling the relay's own worker.
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    relay.stderr_line("worker 0 did not answer its ping: restarting it");
    relay.stderr_line("worker 0 started");
    relay.send(&request(2, "hello", json!({})));
    let answer = relay.next().unwrap();
    assert_eq!(answer["id"], 2, "{answer}");
    assert_ne!(answer["result"]["pid"], json!(pid), "a new process answers");
    assert!(!process_exists(pid));
}

/// A pool of `instances` shell workers that each write three stderr lines, the middle one
/// in two writes with a pause between, and then serve as echo workers.
fn stderr_config(instances: u32, stderr: &str) -> String {
    let script = "printf 'first from %s\\n' $$ >&2; printf 'half ' >&2; sleep 0.05; \
                  printf 'and the rest\\n' >&2; printf 'no newline at the end' >&2; exec \"$0\"";
    json!({
        "pools": [{
            "id": "talk",
            "command": "/bin/sh",
            "args": ["-c", script, WORKER],
            "instances": instances,
            "stderr": stderr,
        }],
    })
    .to_string()
}

#[test]
fn tagged_stderr_lines_arrive_whole_with_pool_and_worker() {
    let mut relay = Relay::start(&stderr_config(2, "tagged"), &[]);
    relay.send(&request(1, "echo", json!({})));
    assert_eq!(relay.next().unwrap()["id"], 1);
    relay.stdin = None;
    assert!(relay.wait().success());
    let stderr = relay.stderr();
    let tagged: Vec<&str> = stderr.lines().filter(|l| l.starts_with("[talk#")).collect();
    for worker in ["[talk#0] ", "[talk#1] "] {
        let of: Vec<&str> = tagged
            .iter()
            .filter_map(|line| line.strip_prefix(worker))
            .collect();
        assert_eq!(of.len(), 3, "{worker}: {stderr}");
        assert!(of[0].starts_with("first from "), "{stderr}");
        assert_eq!(
            of[1..],
            ["half and the rest", "no newline at the end"],
            "{stderr}"
        );
    }
    assert!(
        stderr
            .lines()
            .all(|line| !line.contains("half") || line.ends_with("half and the rest")),
        "{stderr}"
    );
}

#[test]
fn null_stderr_writes_nothing() {
    let mut relay = Relay::start(&stderr_config(2, "null"), &[]);
    relay.send(&request(1, "echo", json!({})));
    assert_eq!(relay.next().unwrap()["id"], 1);
    relay.stdin = None;
    assert!(relay.wait().success());
    let stderr = relay.stderr();
    assert!(
        !stderr.contains("first from") && !stderr.contains("rest"),
        "{stderr}"
    );
}

#[test]
fn a_pasted_mcp_servers_block_is_served_with_its_args_env_and_cwd() {
    let dir = std::env::temp_dir().join(format!("stdiobus-relay-cwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    // As a client's configuration has it, with keys the client keeps for itself.
    let config = json!({
        "mcpServers": {
            "everything": {
                "type": "stdio",
                "command": WORKER,
                "args": ["--name", "pasted"],
                "env": {"STDIOBUS_RELAY_KEY": "vé"},
                "cwd": dir,
                "description": "the echo worker",
                "timeout": 60000,
            }
        }
    });
    let mut relay = Relay::start(&config.to_string(), &[]);
    relay.send(&request(1, "env", json!({"name": "STDIOBUS_RELAY_KEY"})));
    let answer = relay.next().unwrap();
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(answer["result"]["worker"], "pasted", "{answer}");
    assert_eq!(answer["result"]["value"], "vé", "{answer}");
    relay.send(&request(2, "cwd", json!({})));
    let answer = relay.next().unwrap();
    assert_eq!(answer["result"]["cwd"], dir.to_str().unwrap(), "{answer}");
    // The host's environment is inherited, as under the client.
    relay.send(&request(3, "env", json!({"name": "PATH"})));
    let answer = relay.next().unwrap();
    assert_eq!(
        answer["result"]["value"],
        std::env::var("PATH").unwrap(),
        "{answer}"
    );
    relay.workers(1);
    relay.stdin = None;
    assert_eq!(relay.next(), None, "stdout closes");
    assert!(relay.wait().success());
    let stderr = relay.stderr();
    assert!(stderr.contains("worker 0 exited (exit code 0)"), "{stderr}");
    let _ = std::fs::remove_dir(&dir);
}

#[test]
fn an_mcp_servers_block_naming_two_servers_is_refused_at_start() {
    let config = json!({
        "mcpServers": {
            "a": {"command": WORKER},
            "b": {"command": WORKER},
        }
    });
    let mut relay = Relay::start(&config.to_string(), &[]);
    assert_eq!(relay.wait().code(), Some(1));
    let stderr = relay.stderr();
    assert!(
        stderr.contains(
            r#": "mcpServers" names 2 servers ("a", "b"); the relay serves one: keep one in "mcpServers""#
        ),
        "{stderr}"
    );
    assert_eq!(relay.next(), None);
}

#[test]
fn a_remote_mcp_server_is_refused_at_start() {
    let config =
        json!({"mcpServers": {"remote": {"type": "http", "url": "https://example.com/mcp"}}});
    let mut relay = Relay::start(&config.to_string(), &[]);
    assert_eq!(relay.wait().code(), Some(1));
    let stderr = relay.stderr();
    assert!(
        stderr
            .contains(r#"server "remote" has "type": "http"; the relay serves stdio servers only"#),
        "{stderr}"
    );
    assert_eq!(relay.next(), None);
}

#[test]
fn a_file_with_both_pools_and_mcp_servers_is_refused_at_start() {
    let config = json!({
        "pools": [{"id": "echo", "command": WORKER, "instances": 1}],
        "mcpServers": {"echo": {"command": WORKER}},
    });
    let mut relay = Relay::start(&config.to_string(), &[]);
    assert_eq!(relay.wait().code(), Some(1));
    let stderr = relay.stderr();
    assert!(
        stderr.contains(r#"the file has both "pools" and "mcpServers""#),
        "{stderr}"
    );
    assert_eq!(relay.next(), None);
}

/// A pool of one echo worker started through a shell that first leaves a `sleep 300` of
/// its own running, as `npx` leaves `sh` and `node`: the grandchild is in the worker's
/// process group.
fn wrapped_config() -> String {
    json!({
        "pools": [{
            "id": "wrapped",
            "command": "/bin/sh",
            "args": ["-c", "sleep 300 & echo \"grandchild $!\" >&2; exec \"$0\"", WORKER],
            "instances": 1,
        }],
    })
    .to_string()
}

/// Waits until none of `pids` runs: gone, or a zombie its new parent has yet to reap.
fn wait_dead(pids: &[i64]) {
    let running = |pid: &i64| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit(") ").next().map(|rest| !rest.starts_with('Z')))
            .unwrap_or(false)
    };
    let deadline = Instant::now() + DEADLINE;
    while pids.iter().any(running) {
        assert!(Instant::now() < deadline, "still running: {pids:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The grandchild's pid, from the wrapper's stderr line.
fn grandchild(relay: &Relay) -> i64 {
    let line = relay.stderr_line("grandchild ");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A busy server, and what it started, are gone within 2 s of the end of input (the MCP
/// TypeScript SDK SIGKILLs the relay after 2 s): its stdin closes at once, SIGTERM to its
/// process group comes after --term-grace, SIGKILL after --kill-grace.
#[test]
fn a_busy_server_and_its_children_are_gone_within_two_seconds_of_the_end_of_input() {
    let mut relay = Relay::start(&wrapped_config(), &[]);
    let child = grandchild(&relay);
    let worker = relay.workers(1)[0];
    relay.send(&request(1, "sleep", json!({"ms": 60_000})));
    std::thread::sleep(Duration::from_millis(100));
    let closed = Instant::now();
    relay.stdin = None;
    let error = relay.next().unwrap();
    assert_eq!(
        (error["id"].clone(), error["error"]["code"].clone()),
        (json!(1), json!(-32003)),
        "{error}"
    );
    assert_eq!(relay.next(), None, "stdout closes");
    assert!(relay.wait().success());
    assert!(
        closed.elapsed() < Duration::from_secs(2),
        "{:?}",
        closed.elapsed()
    );
    wait_dead(&[worker, child]);
    assert!(
        closed.elapsed() < Duration::from_secs(2),
        "{:?}",
        closed.elapsed()
    );
}

/// The same on SIGTERM, SIGINT and SIGHUP.
#[test]
fn a_signal_stops_a_busy_server_and_its_children_within_two_seconds() {
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let mut relay = Relay::start(&wrapped_config(), &[]);
        let child = grandchild(&relay);
        let worker = relay.workers(1)[0];
        relay.send(&request(1, "sleep", json!({"ms": 60_000})));
        std::thread::sleep(Duration::from_millis(100));
        let signalled = Instant::now();
        // SAFETY: signalling the relay process this test started.
        unsafe { libc::kill(relay.child.id() as i32, signal) };
        let error = relay.next().unwrap();
        assert_eq!(error["error"]["code"], -32003, "{signal}: {error}");
        assert_eq!(relay.next(), None, "stdout closes");
        assert!(relay.wait().success());
        wait_dead(&[worker, child]);
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "{signal}: {:?}",
            signalled.elapsed()
        );
    }
}

/// An answer that comes while the relay stops, before its worker is signalled, reaches
/// the client.
#[test]
fn an_answer_that_comes_during_the_grace_is_delivered() {
    let mut relay = Relay::start(&echo_config(1, json!({})), &["--term-grace", "1"]);
    relay.workers(1);
    relay.send(&request(1, "sleep", json!({"ms": 400})));
    let closed = Instant::now();
    relay.stdin = None;
    let answer = relay.next().unwrap();
    assert_eq!(answer["id"], 1, "{answer}");
    assert!(answer.get("result").is_some(), "{answer}");
    assert_eq!(relay.next(), None, "stdout closes");
    assert!(relay.wait().success());
    assert!(
        closed.elapsed() < Duration::from_secs(1),
        "{:?}",
        closed.elapsed()
    );
    let stderr = relay.stderr();
    assert!(stderr.contains("worker 0 exited (exit code 0)"), "{stderr}");
}

/// Requests name no pool: a second pool would never be reached, so the relay refuses it.
#[test]
fn a_configuration_of_two_pools_is_refused_at_start() {
    let config = json!({
        "pools": [
            {"id": "a", "command": WORKER, "instances": 1},
            {"id": "b", "command": WORKER, "instances": 1},
        ],
    });
    let mut relay = Relay::start(&config.to_string(), &[]);
    assert_eq!(relay.wait().code(), Some(1));
    let stderr = relay.stderr();
    assert!(
        stderr.contains(
            r#": "pools" has 2 pools ("a", "b"); the relay serves one: keep one in "pools""#
        ),
        "{stderr}"
    );
    assert_eq!(relay.next(), None);
}

/// A server that dies at every start ends the relay as it would end on its own: at once,
/// with its status, its stderr on the relay's.
#[test]
fn a_server_that_dies_at_every_start_ends_the_relay_with_its_status() {
    let config = json!({
        "pools": [{
            "id": "oops",
            "command": "/bin/sh",
            "args": ["-c", "echo oops >&2; exit 3"],
            "instances": 1,
        }],
        "limits": {"max_restarts": 100},
    });
    let started = Instant::now();
    let mut relay = Relay::start(&config.to_string(), &[]);
    relay.send(&request(1, "initialize", json!({})));
    assert_eq!(relay.wait().code(), Some(3));
    let elapsed = started.elapsed();
    let stderr = relay.stderr();
    assert!(stderr.lines().any(|line| line == "oops"), "{stderr}");
    assert!(
        stderr.contains(
            "worker 0 died within 1 s of its start 3 times in a row, the last time with exit code 3"
        ),
        "{stderr}"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[test]
fn a_pool_without_instances_runs_one_process() {
    let config = json!({"pools": [{"id": "echo", "command": WORKER}]}).to_string();
    let mut relay = Relay::start(&config, &[]);
    assert_eq!(relay.workers(1).len(), 1);
    relay.send(&request(1, "hello", json!({})));
    let answer = relay.next().unwrap();
    assert_eq!(answer["id"], 1, "{answer}");
    assert!(answer.get("result").is_some(), "{answer}");
}
