//! The routing choice as plain values: a worker table of made-up processes (nothing is
//! forked, nothing is written), pools, and the tables the caller lends.

extern crate std;
use std::vec::Vec;

use super::*;
use crate::clock::Instant;
use crate::config::PoolIdText;
use crate::interpose::Child;
use crate::routing::table::SessionKey;
use crate::supervise::Life;
use crate::{RequestSlot, SessionSlot};

/// A table of `count` running workers, none of them a real process.
fn workers(count: usize) -> Children {
    let mut children = Children::new();
    for id in 0..count {
        let fd = 100 + 2 * id as i32;
        let child = Child::new(-1, -1, [fd, fd + 1], Instant::from_nanos(0), None);
        children.push(child).unwrap();
    }
    children
}

fn pools(list: &[(&str, u32)]) -> Pools {
    let mut pools = Pools::new();
    for (id, instances) in list {
        pools.push(PoolIdText::from_chars(id.chars()), *instances);
    }
    pools
}

/// The workers `count` messages go to.
fn route(router: &mut Router<'_>, children: &Children, message: &str, count: usize) -> Vec<usize> {
    (0..count)
        .map(|_| {
            let (worker, _) = router
                .choose(message.as_bytes(), Target::Message, children)
                .unwrap();
            worker
        })
        .collect()
}

/// Ends worker `id`'s process, as a reap would.
fn end(children: &mut Children, id: usize) {
    children.get_mut(id).unwrap().life = Life::Ended(Some(9));
}

#[test]
fn messages_go_round_robin_over_the_live_workers_of_the_pool() {
    let mut children = workers(3);
    let mut router = Router::new(pools(&[("echo", 3)]));
    assert_eq!(
        route(&mut router, &children, "{}", 7),
        [0, 1, 2, 0, 1, 2, 0]
    );
    end(&mut children, 2);
    assert_eq!(route(&mut router, &children, "{}", 4), [1, 0, 1, 0]);
    end(&mut children, 0);
    end(&mut children, 1);
    assert_eq!(
        router
            .choose(b"{}", Target::Message, &children)
            .map(|c| c.0),
        Err(Error::NoWorker)
    );
}

#[test]
fn a_pool_is_named_by_the_message_or_the_call_and_never_falls_back() {
    let children = workers(3);
    let mut router = Router::new(pools(&[("a", 1), ("b", 2)]));
    assert_eq!(
        route(&mut router, &children, r#"{"pool":"b"}"#, 3),
        [1, 2, 1]
    );
    assert_eq!(route(&mut router, &children, r#"{"pool":"a"}"#, 2), [0, 0]);
    let choose = |router: &mut Router<'_>, message: &str, target| {
        router
            .choose(message.as_bytes(), target, &children)
            .map(|c| c.0)
    };
    assert_eq!(
        choose(&mut router, r#"{"pool":"a"}"#, Target::Pool("b")),
        Ok(2)
    );
    assert_eq!(
        choose(&mut router, "{}", Target::Message),
        Err(Error::PoolNotNamed)
    );
    assert_eq!(
        choose(&mut router, r#"{"pool":"c"}"#, Target::Message),
        Err(Error::UnknownPool)
    );
    assert_eq!(
        choose(&mut router, "{}", Target::Pool("c")),
        Err(Error::UnknownPool)
    );
}

#[test]
fn a_session_stays_on_its_worker_and_moves_only_when_that_worker_is_gone() {
    let mut children = workers(3);
    let mut slots = [SessionSlot::EMPTY; 4];
    let mut router = Router::new(pools(&[("echo", 3)]));
    router.set_sessions(&mut slots);
    let s1 = r#"{"sessionId":"s1"}"#;
    let s2 = r#"{"sessionId":"s2"}"#;
    assert_eq!(route(&mut router, &children, s1, 3), [0, 0, 0]);
    assert_eq!(route(&mut router, &children, s2, 2), [1, 1]);
    assert_eq!(route(&mut router, &children, "{}", 1), [2]);
    end(&mut children, 0);
    let (worker, moved) = router
        .choose(s1.as_bytes(), Target::Message, &children)
        .unwrap();
    let (moved, key) = moved.expect("the session moved");
    assert_eq!((moved.from, moved.to, worker), (0, worker, worker));
    assert_ne!(worker, 0);
    assert_eq!(
        key.as_bytes(),
        SessionKey::decode("s1".chars()).unwrap().as_bytes()
    );
    assert_eq!(route(&mut router, &children, s1, 2), [worker, worker]);
    assert_eq!(router.session_count(), 2);
}

#[test]
fn a_full_session_table_refuses_a_new_session_and_keeps_the_old_ones() {
    let children = workers(2);
    let mut slots = [SessionSlot::EMPTY; 1];
    let mut router = Router::new(pools(&[("echo", 2)]));
    router.set_sessions(&mut slots);
    assert_eq!(
        route(&mut router, &children, r#"{"sessionId":"a"}"#, 1),
        [0]
    );
    let refused = router.choose(br#"{"sessionId":"b"}"#, Target::Message, &children);
    let refused = refused.map(|(worker, _)| worker);
    assert!(
        matches!(refused, Err(Error::SessionTableFull { .. })),
        "{refused:?}"
    );
    assert_eq!(
        route(&mut router, &children, r#"{"sessionId":"a"}"#, 1),
        [0]
    );
    assert_eq!(router.end_session(None, "a"), Ok(true));
    let b = route(&mut router, &children, r#"{"sessionId":"b"}"#, 3);
    assert_eq!(b, [b[0]; 3], "the freed slot takes the new session");
}

#[test]
fn a_request_is_reported_unanswered_only_if_its_worker_ends_first() {
    let children = workers(2);
    let mut slots = [RequestSlot::EMPTY; 4];
    let mut router = Router::new(pools(&[("echo", 2)]));
    router.set_requests(&mut slots);
    for id in [1, 2] {
        let request = std::format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#);
        let (worker, _) = router
            .choose(request.as_bytes(), Target::Message, &children)
            .unwrap();
        let generation = children.generation(worker);
        router
            .sending(request.as_bytes(), Binding { worker, generation })
            .unwrap();
    }
    assert_eq!(router.requests_in_flight(), 2);
    router.received(1, br#"{"jsonrpc":"2.0","id":2,"result":{}}"#);
    assert_eq!(router.requests_in_flight(), 1);
    let mut lost = Vec::new();
    router.abandon(1, 0, |id| lost.push(id.to_vec()));
    assert!(lost.is_empty(), "worker 1 answered everything");
    router.abandon(0, 0, |id| lost.push(id.to_vec()));
    assert_eq!(lost, [b"1".to_vec()]);
    assert_eq!(router.requests_in_flight(), 0);
}
