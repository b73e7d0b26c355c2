//! The buffer's take against a real `redis-server`: it must leave the buffer and processing
//! lists exactly as one RPOPLPUSH per message would (recovery and acknowledgement rely on it).

use mispdash_core::buffer::Buffer;
use mispdash_testkit::Redis;

fn strings(items: Vec<Vec<u8>>) -> Vec<String> {
    items
        .into_iter()
        .map(|b| String::from_utf8(b).expect("UTF-8"))
        .collect()
}

#[test]
fn take_moves_the_oldest_as_rpoplpush_would() {
    let redis = Redis::start();
    let mut conn = redis.conn(0).expect("connection");
    // Producers LPUSH: message 1 is the oldest, at the tail. The second take happens while the
    // first batch is still in the processing list, as when two batches are in flight.
    let all: Vec<String> = (1..=2600).map(|i| format!("m{i}")).collect();
    let _: () = redis::cmd("LPUSH")
        .arg("B")
        .arg(&all)
        .query(&mut conn)
        .expect("fill");
    // A reference pair of lists moved with plain RPOPLPUSH.
    let _: () = redis::cmd("LPUSH")
        .arg("R")
        .arg(&all)
        .query(&mut conn)
        .expect("fill reference");
    let buffer = Buffer::new("B");
    let first = buffer.take(&mut conn, 1200, 0.0).expect("take");
    assert_eq!(strings(first), all[..1200].to_vec(), "oldest first");
    let second = buffer.take(&mut conn, 1200, 0.0).expect("take");
    assert_eq!(strings(second), all[1200..2400].to_vec());
    for _ in 0..2400 {
        let _: Option<String> = redis::cmd("RPOPLPUSH")
            .arg("R")
            .arg("R:processing")
            .query(&mut conn)
            .expect("rpoplpush");
    }
    let range = |conn: &mut redis::Connection, key: &str| -> Vec<String> {
        redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(conn)
            .expect("lrange")
    };
    assert_eq!(range(&mut conn, "B"), range(&mut conn, "R"));
    assert_eq!(
        range(&mut conn, "B:processing"),
        range(&mut conn, "R:processing")
    );
    // Recovery reads the processing list back oldest first.
    assert_eq!(
        strings(buffer.recover(&mut conn).expect("recover")),
        all[..2400].to_vec()
    );
    // What is left, then nothing.
    assert_eq!(
        strings(buffer.take(&mut conn, 1200, 0.0).expect("take")),
        all[2400..].to_vec()
    );
    assert!(buffer.take(&mut conn, 10, 0.0).expect("take").is_empty());
    let exists: bool = redis::cmd("EXISTS")
        .arg("B")
        .query(&mut conn)
        .expect("exists");
    assert!(
        !exists,
        "the emptied buffer key is gone, as after RPOPLPUSH"
    );
}
