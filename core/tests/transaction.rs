//! A batch's transaction sent in pieces (`Resp::exec_ops_streamed`) against a real
//! `redis-server`: it must leave the same keyspace and name the same refused operations as the
//! transaction written whole and sent at once.

use mispdash_core::store::ops::DbNumbers;
use mispdash_core::store::{Db, Op, Resp};
use mispdash_testkit::Redis;

/// Operations over both databases, with one that Redis refuses (a sorted-set increment on a
/// string) in the middle, so the pieces' boundaries fall between SELECTs and the refusal.
fn ops() -> Vec<Op> {
    let mut ops = Vec::new();
    for i in 0..400 {
        let db = if i % 3 == 0 { Db::List } else { Db::Data };
        ops.push(Op::ZIncrBy {
            db,
            key: format!("z:{}", i % 7),
            member: format!("member-{i}"),
            by: 1.0,
        });
        ops.push(Op::Set {
            db: Db::Data,
            key: format!("s:{i}"),
            value: "x".repeat(i),
        });
        if i == 200 {
            ops.push(Op::ZIncrBy {
                db: Db::Data,
                key: "s:5".into(),
                member: "refused".into(),
                by: 1.0,
            });
        }
    }
    ops
}

/// Every key of both databases with its `DUMP`, sorted.
fn keyspace(redis: &Redis, dbs: DbNumbers) -> Vec<(i64, String, Vec<u8>)> {
    let mut all = Vec::new();
    for db in [dbs.data, dbs.list] {
        let mut conn = redis.conn(db).expect("connection");
        let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).expect("keys");
        keys.sort();
        for k in keys {
            let dump: Vec<u8> = redis::cmd("DUMP").arg(&k).query(&mut conn).expect("dump");
            all.push((db, k, dump));
        }
    }
    all
}

#[test]
fn a_transaction_sent_in_pieces_does_what_the_whole_one_does() {
    let dbs = DbNumbers { data: 1, list: 3 };
    let ops = ops();

    let whole = Redis::start();
    let mut conn = whole.conn(dbs.list).expect("connection");
    let mut resp = Resp::default();
    resp.write_ops(&ops, dbs);
    let commands = resp.commands();
    let refused_whole: Vec<Option<usize>> = resp
        .exec_transaction_refusals(&mut conn)
        .expect("transaction")
        .iter()
        .map(|r| r.op)
        .collect();

    let pieces = Redis::start();
    let mut conn = pieces.conn(dbs.list).expect("connection");
    let mut resp = Resp::default();
    let streamed = resp
        .exec_ops_streamed(&mut conn, &ops, dbs, 512)
        .expect("transaction");
    let refused_pieces: Vec<Option<usize>> = streamed.refusals.iter().map(|r| r.op).collect();

    assert_eq!(
        refused_whole.len(),
        1,
        "the wrong-type write was not refused"
    );
    assert_eq!(refused_pieces, refused_whole);
    assert!(matches!(
        refused_pieces[0].map(|i| &ops[i]),
        Some(Op::ZIncrBy { key, .. }) if key == "s:5"
    ));
    assert_eq!(streamed.commands, commands);
    assert!(
        streamed.largest_piece < streamed.bytes / 10,
        "the transaction went out whole: {} of {} bytes at once",
        streamed.largest_piece,
        streamed.bytes
    );
    let expected = keyspace(&whole, dbs);
    assert_eq!(expected.len(), 7 * 2 + 400, "keys written");
    assert_eq!(keyspace(&pieces, dbs), expected);
    // The connection is back in the list database, where the dispatcher keeps it.
    let db: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query(&mut conn)
        .expect("info");
    assert!(db.contains(" db=3 "), "{db}");
}
