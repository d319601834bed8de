//! `Bus::send_batch`: many messages in one kernel call, each checked by the bus, all to
//! one worker.

mod common;

use serde_json::{Value, json};
use stdiobus_embed::{Bus, Error, Limits, Pool, RequestSlot};

use common::{Seen, WORKER, config, options, poll_until, ring, start_echo};

/// `count` requests, ids from `first`, one per line.
fn batch(first: u64, count: u64) -> Vec<u8> {
    let lines: Vec<String> = (first..first + count)
        .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "m"}).to_string())
        .collect();
    lines.join("\n").into_bytes()
}

fn answers(seen: &[Seen]) -> Vec<Value> {
    seen.iter()
        .filter_map(Seen::json)
        .filter(|m| m.get("result").is_some())
        .collect()
}

#[test]
fn a_batch_reaches_one_worker_whole_and_every_request_is_answered() {
    let (mut bus, mut events) = start_echo(2);
    let mut seen = Vec::new();
    common::drain(&mut events, &mut seen);
    for (round, trailing) in [(0u64, false), (1, true)] {
        let mut batch = batch(round * 100, 16);
        if trailing {
            batch.push(b'\n');
        }
        assert_eq!(bus.send_batch(&batch), Ok(16));
        poll_until(&mut bus, &mut events, &mut seen, "16 answers", |seen| {
            answers(seen).len() as u64 >= (round + 1) * 16
        });
    }
    let all = answers(&seen);
    for round in all.chunks(16) {
        let ids: Vec<u64> = round.iter().map(|m| m["id"].as_u64().unwrap()).collect();
        let first = ids[0];
        assert_eq!(ids, (first..first + 16).collect::<Vec<_>>(), "in order");
        let pid = &round[0]["result"]["pid"];
        assert!(
            round.iter().all(|m| &m["result"]["pid"] == pid),
            "one worker"
        );
    }
    assert_ne!(
        all[0]["result"]["pid"], all[16]["result"]["pid"],
        "the next batch goes to the next worker"
    );
}

#[test]
fn a_bad_message_anywhere_refuses_the_whole_batch() {
    let (mut bus, mut events) = start_echo(1);
    let mut bad = batch(1, 3);
    bad.extend_from_slice(b"\n{\"jsonrpc\":\"2.0\",\"id\":4,");
    assert_eq!(
        bus.send_batch(&bad),
        Err(Error::BatchNotJson { message: 3 })
    );
    let mut gap = batch(1, 2);
    gap.extend_from_slice(b"\n\n");
    gap.extend_from_slice(&batch(3, 1));
    assert_eq!(
        bus.send_batch(&gap),
        Err(Error::BatchNotJson { message: 2 })
    );
    assert_eq!(bus.send_batch(b""), Err(Error::EmptyMessage));
    assert_eq!(
        bus.send_batch(b"{\"a\":1}\n{\"b\":\"\0\"}"),
        Err(Error::InteriorNul { offset: 14 })
    );
    // None of those reached the worker: only the next request's answer comes.
    bus.send(br#"{"jsonrpc":"2.0","id":"after","method":"m"}"#)
        .unwrap();
    let mut seen = Vec::new();
    poll_until(&mut bus, &mut events, &mut seen, "the answer", |seen| {
        !answers(seen).is_empty()
    });
    let ids: Vec<Value> = answers(&seen).iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, [json!("after")]);
}

#[test]
fn batches_are_routed_and_tracked_like_their_messages() {
    let pools = [
        Pool::new("a", WORKER).args(&["--name", "a"]),
        Pool::new("b", WORKER).args(&["--name", "b"]),
    ];
    let (producer, mut events) = ring();
    let mut bus = Bus::create(config(&pools, &Limits::default()), options(), producer).unwrap();
    bus.set_request_table(Box::leak(Box::new([RequestSlot::EMPTY; 64])));
    let mut bus = bus.start().unwrap();
    let to_b = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"pool\":\"b\"}\n\
                 {\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"m\",\"pool\":\"b\"}";
    assert_eq!(bus.send_batch(to_b), Ok(2));
    assert_eq!(bus.requests_in_flight(), 2, "each request tracked");
    let mixed = b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"m\",\"pool\":\"b\"}\n\
                  {\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"m\",\"pool\":\"a\"}";
    assert_eq!(bus.send_batch(mixed), Err(Error::MixedBatch { message: 1 }));
    assert_eq!(bus.requests_in_flight(), 2, "nothing of a refused batch");
    let mut seen = Vec::new();
    poll_until(&mut bus, &mut events, &mut seen, "two answers", |seen| {
        answers(seen).len() >= 2
    });
    let names: Vec<Value> = answers(&seen)
        .iter()
        .map(|m| m["result"]["worker"].clone())
        .collect();
    assert_eq!(names, [json!("b"), json!("b")]);
    assert_eq!(bus.requests_in_flight(), 0);
}
