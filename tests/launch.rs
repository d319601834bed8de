//! Per-pool environment and working directory, applied by the bus at exec: real worker
//! processes report what they were started with. (Stderr modes are seen from outside the
//! host, in `tests/relay.rs`.)

mod common;

use common::{Seen, config, options, poll_until, ring};
use stdiobus_embed::{Bus, Error, Limits, Pool, WorkerId};

/// A shell worker that reports `$STDIOBUS_GREETING`, `$HOME` (or `-` when unset) and its
/// directory as one JSON line, then echoes.
const REPORT: &[&str] = &[
    "-c",
    r#"printf '{"jsonrpc":"2.0","method":"started","params":{"greeting":"%s","home":"%s","cwd":"%s"}}\n' "$STDIOBUS_GREETING" "${HOME:--}" "$(pwd -P)"; exec /bin/cat"#,
];

/// What each worker of `pools` reported, in worker order.
fn reports(pools: &[Pool<'_>]) -> Vec<serde_json::Value> {
    let (producer, mut consumer) = ring();
    let mut bus = Bus::create(config(pools, &Limits::default()), options(), producer)
        .expect("create")
        .start()
        .expect("start");
    let workers: u32 = pools.iter().map(|pool| pool.instances).sum();
    let mut seen = Vec::new();
    poll_until(&mut bus, &mut consumer, &mut seen, "every report", |seen| {
        seen.iter().filter_map(Seen::json).count() == workers as usize
    });
    seen.iter()
        .filter_map(Seen::json)
        .map(|report| report["params"].clone())
        .collect()
}

#[test]
fn a_pool_adds_to_the_hosts_environment_or_replaces_it() {
    let home = std::env::var("HOME").expect("the test runs with HOME set");
    let added = Pool::new("added", "/bin/sh")
        .args(REPORT)
        .env(&[("STDIOBUS_GREETING", "héllo there")])
        .instances(2);
    let replaced = Pool::new("replaced", "/bin/sh")
        .args(REPORT)
        .env(&[("STDIOBUS_GREETING", "alone")])
        .inherit_env(false);
    let plain = Pool::new("plain", "/bin/sh").args(REPORT);
    let mut reports = reports(&[added, replaced, plain]);
    reports.sort_by_key(|report| report["greeting"].to_string());
    let greetings: Vec<(&str, &str)> = reports
        .iter()
        .map(|r| (r["greeting"].as_str().unwrap(), r["home"].as_str().unwrap()))
        .collect();
    assert_eq!(
        greetings,
        [
            ("", home.as_str()),
            ("alone", "-"),
            ("héllo there", home.as_str()),
            ("héllo there", home.as_str()),
        ]
    );
}

#[test]
fn a_pool_variable_overrides_the_hosts_of_the_same_name() {
    let home = Pool::new("home", "/bin/sh")
        .args(REPORT)
        .env(&[("HOME", "/nowhere")]);
    assert_eq!(reports(&[home])[0]["home"], "/nowhere");
}

#[test]
fn workers_start_in_their_pools_directory() {
    let dir = std::env::temp_dir().join(format!("stdiobus-cwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    let path: &'static str = Box::leak(dir.to_str().unwrap().into());
    let reports = reports(&[
        Pool::new("moved", "/bin/sh").args(REPORT).cwd(path),
        Pool::new("stays", "/bin/sh").args(REPORT),
    ]);
    let here = std::env::current_dir().unwrap().canonicalize().unwrap();
    let mut dirs: Vec<&str> = reports.iter().map(|r| r["cwd"].as_str().unwrap()).collect();
    dirs.sort();
    let mut expected = vec![path, here.to_str().unwrap()];
    expected.sort();
    assert_eq!(dirs, expected);
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
fn a_directory_that_is_not_there_fails_start_with_the_reason() {
    let pools = [
        Pool::new("fine", "/bin/cat"),
        Pool::new("lost", "/bin/cat").cwd("/nonexistent/stdiobus"),
    ];
    let (producer, _consumer) = ring();
    let bus = Bus::create(config(&pools, &Limits::default()), options(), producer).unwrap();
    let failed = bus.start().expect_err("start fails");
    assert_eq!(
        failed.error,
        Error::CwdFailed {
            worker: WorkerId::new(1),
            errno: libc::ENOENT,
        }
    );
    let message = failed.error.to_string();
    assert!(
        message.contains("worker 1 could not enter its working directory")
            && message.contains("no such file"),
        "{message}"
    );
}
