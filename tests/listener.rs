//! Listener clients: their connections and disconnections arrive as events like any other.
//! (What the kernel does with their traffic is the subject of the listener work to come.)

mod common;

use std::net::{TcpListener, TcpStream};

use common::{Seen, WORKER, config, poll_until, ring};
use stdiobus_embed::{Bus, Limits, Listener, Pool};

/// A port nobody listens on right now (the kernel cannot be asked for port 0).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_tcp_client_connecting_and_leaving_are_events() {
    let (producer, mut events) = ring();
    let port = free_port();
    let options = common::options().listener(Listener::Tcp {
        host: c"127.0.0.1",
        port,
    });
    let pools = [Pool::new("echo", WORKER)];
    let mut bus = Bus::create(config(&pools, &Limits::default()), options, producer)
        .unwrap()
        .start()
        .unwrap();

    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let peer = client.local_addr().unwrap().to_string();
    let mut seen = Vec::new();
    poll_until(&mut bus, &mut events, &mut seen, "the connection", |seen| {
        seen.iter()
            .any(|s| matches!(s, Seen::ClientConnected(_, p) if *p == peer))
    });
    assert_eq!(bus.client_count(), 1);

    drop(client);
    poll_until(
        &mut bus,
        &mut events,
        &mut seen,
        "the disconnection",
        |seen| {
            seen.iter()
                .any(|s| matches!(s, Seen::ClientDisconnected(..)))
        },
    );
    assert_eq!(bus.client_count(), 0);
    assert_eq!(bus.stats().client_connects, 1);
    assert_eq!(bus.stats().client_disconnects, 1);
}
