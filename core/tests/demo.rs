//! The demo publisher over a real ZMQ socket, received the way the feed subscriber receives MISP.

use mispdash_core::clock::Clock;
use mispdash_core::demo::{spawn_publisher, spawn_publisher_with_keepalive, TOPICS};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn free_endpoint() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let port = l.local_addr().expect("local addr").port();
    format!("tcp://127.0.0.1:{port}")
}

fn subscriber(ctx: &zmq::Context, endpoint: &str) -> zmq::Socket {
    let sub = ctx.socket(zmq::SUB).expect("SUB socket");
    sub.set_subscribe(b"").expect("subscribe");
    sub.set_rcvtimeo(5000).expect("timeout");
    sub.set_linger(0).expect("linger");
    sub.connect(endpoint).expect("connect");
    sub
}

#[test]
fn a_subscriber_receives_misp_frames() {
    let endpoint = free_endpoint();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = spawn_publisher(&endpoint, 200.0, 42, Clock::system(), stop.clone())
        .expect("publisher starts");

    let ctx = zmq::Context::new();
    let sub = subscriber(&ctx, &endpoint);
    let mut topics = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let msg = sub.recv_bytes(0).expect("a frame within 5 s");
        // One frame per message, as MISP sends.
        assert!(!sub.get_rcvmore().expect("rcvmore"));
        let text = String::from_utf8(msg).expect("UTF-8");
        let (topic, body) = text.split_once(' ').expect("topic, space, body");
        assert!(TOPICS.contains(&topic), "{topic}");
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON body");
        assert!(json.is_object());
        topics.insert(topic.to_string());
    }
    assert!(topics.len() >= 3, "{topics:?}");

    stop.store(true, Ordering::Relaxed);
    let asked = Instant::now();
    handle.join().expect("publisher thread ends cleanly");
    assert!(asked.elapsed() < Duration::from_secs(2));
}

#[test]
fn silence_is_filled_with_keepalives() {
    let endpoint = free_endpoint();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = spawn_publisher_with_keepalive(
        &endpoint,
        0.0,
        1,
        Clock::system(),
        stop.clone(),
        Duration::from_millis(200),
    )
    .expect("publisher starts");

    let ctx = zmq::Context::new();
    let sub = subscriber(&ctx, &endpoint);
    for _ in 0..2 {
        let msg = sub.recv_string(0).expect("recv").expect("UTF-8");
        let (topic, body) = msg.split_once(' ').expect("space");
        assert_eq!(topic, "misp_json_self");
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(json["status"], "demo");
        assert!(json["uptime"].is_u64());
    }
    stop.store(true, Ordering::Relaxed);
    handle.join().expect("publisher thread ends cleanly");
}

#[test]
fn a_taken_endpoint_is_an_error() {
    let endpoint = free_endpoint();
    let stop = Arc::new(AtomicBool::new(false));
    let first = spawn_publisher(&endpoint, 1.0, 1, Clock::system(), stop.clone()).expect("first");
    let second = spawn_publisher(&endpoint, 1.0, 1, Clock::system(), stop.clone());
    let err = second.expect_err("second bind must fail");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains(&endpoint));
    stop.store(true, Ordering::Relaxed);
    first.join().expect("first publisher ends");
}
