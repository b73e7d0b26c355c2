//! No loss, no double count: the dispatcher is killed with SIGKILL at random moments while it
//! drains a filled buffer, and Redis itself is killed and restarted mid-stream; in both cases
//! the keyspace must end up exactly as the original's after the same corpus (seed2), and the
//! dispatcher's message counter (written in the same transaction as the data) must count every
//! message once.

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

const SEED2_MESSAGES: i64 = 3000 + 1; // corpus + sentinel keepalive

fn config_for(dir: &Path, redis_port: u16, zport: u16) -> std::path::PathBuf {
    let instances = format!(
        r#"[{{"name": "misp1", "url": "http://localhost", "zmq": "tcp://127.0.0.1:{zport}"}}]"#
    );
    write_config(
        dir,
        redis_port,
        &instances,
        &oracle_mmdb(),
        Some(&shared().join("data/country_code_lat_long.json")),
    )
}

fn llen(r: &Redis, key: &str) -> i64 {
    r.conn(3)
        .and_then(|mut c| redis::cmd("LLEN").arg(key).query(&mut c))
        .unwrap_or(-1)
}

fn dispatched(r: &Redis) -> i64 {
    r.conn(3)
        .and_then(|mut c| {
            redis::cmd("HGET")
                .arg("MISPDASH_DISPATCH")
                .arg("messages")
                .query::<Option<i64>>(&mut c)
        })
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// Fills the buffer through a real `mispdash subscribe` fed by the ZeroMQ replayer.
fn fill_buffer(dir: &Path, cfg: &Path, redis: &Redis, zport: u16) {
    let mut sub = Mispdash::start(
        cfg,
        &[
            "subscribe",
            "-n",
            "misp1",
            "-u",
            &format!("tcp://127.0.0.1:{zport}"),
        ],
        &dir.join("subscribe.log"),
    );
    publish_corpus(
        &shared().join("corpus/seed2.jsonl"),
        &format!("tcp://127.0.0.1:{zport}"),
        &[],
    );
    assert!(
        wait_until(Duration::from_secs(60), || llen(redis, "bufferList")
            == SEED2_MESSAGES),
        "buffer holds {} of {SEED2_MESSAGES}:\n{}",
        llen(redis, "bufferList"),
        sub.log_text()
    );
    sub.kill9();
}

fn assert_matches_oracle(redis: &Redis, dir: &Path) {
    assert_eq!(llen(redis, "bufferList"), 0);
    assert_eq!(llen(redis, "bufferList:processing"), 0);
    assert_eq!(
        llen(redis, "bufferList:dead"),
        0,
        "nothing in seed2 deserves a dead letter"
    );
    assert_eq!(
        dispatched(redis),
        SEED2_MESSAGES,
        "every message counted exactly once"
    );
    let actual = dump_without_own_keys(redis.port, dir, "actual");
    let expected = shared().join("corpus/seed2.redis.json");
    let (same, diff) = compare("redis", &expected, &actual);
    assert!(
        same,
        "keyspace differs from the uninterrupted original:\n{diff}"
    );
}

/// A small deterministic generator for kill delays; the seed is printed for reproduction.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn sigkill_while_draining_loses_and_repeats_nothing() {
    let dir = tmpdir("kill9");
    let redis = Redis::start();
    let zport = free_port();
    let cfg = config_for(&dir, redis.port, zport);
    fill_buffer(&dir, &cfg, &redis, zport);

    let seed = std::env::var("MISPDASH_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            Instant::now().elapsed().as_nanos() as u64 ^ u64::from(std::process::id())
        });
    eprintln!("chaos seed {seed} (MISPDASH_CHAOS_SEED to repeat)");
    let mut rng = Lcg(seed);
    let mut kills = 0;
    // Only a guard against a loop that never ends: each run must make progress within 30 s
    // (below), and how many runs the drain takes depends on how loaded the machine is (on a
    // busy one, 260 runs of about 10 messages each took more than 240 s).
    let deadline = Instant::now() + Duration::from_secs(900);
    while llen(&redis, "bufferList") + llen(&redis, "bufferList:processing") > 0 {
        assert!(
            Instant::now() < deadline,
            "draining under SIGKILL took too long ({kills} kills, {} dispatched)",
            dispatched(&redis)
        );
        let before = dispatched(&redis);
        // No HTTP server: restarting one on the same port again and again would race any
        // loopback connection that happens to be given that port in between.
        let mut d = Mispdash::start(
            &cfg,
            &[
                "run",
                "--no-subscribers",
                "--no-managed-redis",
                "--no-server",
            ],
            &dir.join(format!("run{kills}.log")),
        );
        // Kill only once it is draining, at a random moment within its next batches.
        // Only an empty processing list as well means there is nothing left to commit: with the
        // buffer empty but a batch left in processing, a kill right after start would never let
        // recovery commit it.
        let drained = |r: &Redis| llen(r, "bufferList") + llen(r, "bufferList:processing") == 0;
        let draining = wait_until(Duration::from_secs(30), || {
            dispatched(&redis) > before || drained(&redis) || !d.is_running()
        });
        assert!(
            draining && d.is_running(),
            "dispatcher run {kills} made no progress (running: {}):\n{}",
            d.is_running(),
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(rng.next() % 40));
        d.kill9();
        kills += 1;
        // A killed dispatcher's lease would hold the next one back until it expires; that
        // takeover is the business of `standby_dispatchers_take_over_and_count_nothing_twice`.
        if let Ok(mut c) = redis.conn(3) {
            let _: redis::RedisResult<()> = redis::cmd("DEL")
                .arg("MISPDASH_DISPATCHER_LEASE")
                .query(&mut c);
        }
    }
    eprintln!("{kills} SIGKILLs while draining");
    assert!(
        kills >= 2,
        "the buffer drained before the dispatcher could be killed twice"
    );
    assert_matches_oracle(&redis, &dir);
}

#[test]
fn redis_restart_mid_stream_loses_nothing() {
    let dir = tmpdir("redis-restart");
    let port = free_port();
    let mut redis = Redis::start_on(port, &dir, true);
    let zport = free_port();
    let cfg = config_for(&dir, redis.port, zport);
    let d = Mispdash::start(&cfg, &["run", "--no-managed-redis"], &dir.join("run.log"));
    let bind = format!("tcp://127.0.0.1:{zport}");
    let mut replay = std::process::Command::new(python())
        .arg(shared().join("tools/zmq_replay.py"))
        .arg(shared().join("corpus/seed2.jsonl"))
        .args(["--bind", &bind, "--sentinel", "--quiet", "--rate", "600"])
        .spawn()
        .expect("replayer");
    // Let part of the stream through, then take Redis away for a while and bring it back.
    assert!(wait_until(Duration::from_secs(30), || dispatched(&redis) > 500));
    redis.kill();
    std::thread::sleep(Duration::from_millis(1500));
    redis.restart();
    wait_child(&mut replay, Duration::from_secs(120), "the replayer");
    assert!(
        wait_until(Duration::from_secs(120), || dispatched(&redis)
            == SEED2_MESSAGES
            && llen(&redis, "bufferList") == 0
            && llen(&redis, "bufferList:processing") == 0),
        "dispatched {} of {SEED2_MESSAGES}:\n{}",
        dispatched(&redis),
        d.log_text()
    );
    assert_matches_oracle(&redis, &dir);
}

fn lease_holder_pid(r: &Redis) -> Option<u32> {
    let holder: Option<String> = r
        .conn(3)
        .and_then(|mut c| {
            redis::cmd("GET")
                .arg("MISPDASH_DISPATCHER_LEASE")
                .query(&mut c)
        })
        .ok()
        .flatten();
    holder?
        .split(" pid ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// Two, then three dispatchers started together on one filled buffer, the active one killed
/// with SIGKILL at random points (and replaced, so a standby is always there): the keyspace
/// must be the uninterrupted original's, every message counted once, and a standby must have
/// taken over each time.
#[test]
fn standby_dispatchers_take_over_and_count_nothing_twice() {
    let seed = std::env::var("MISPDASH_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) * 7919);
    eprintln!("chaos seed {seed} (MISPDASH_CHAOS_SEED to repeat)");
    let mut rng = Lcg(seed);
    for n in [2usize, 3] {
        let dir = tmpdir(&format!("standby{n}"));
        let redis = Redis::start();
        let zport = free_port();
        let cfg = config_for(&dir, redis.port, zport);
        fill_buffer(&dir, &cfg, &redis, zport);
        let args = [
            "run",
            "--no-subscribers",
            "--no-managed-redis",
            "--no-server",
        ];
        let mut started = 0;
        let mut start = |dir: &Path| {
            started += 1;
            Mispdash::start(&cfg, &args, &dir.join(format!("d{started}.log")))
        };
        let mut ds: Vec<Mispdash> = (0..n).map(|_| start(&dir)).collect();
        let mut kills = 0;
        let deadline = Instant::now() + Duration::from_secs(180);
        let drained = |r: &Redis| llen(r, "bufferList") + llen(r, "bufferList:processing") == 0;
        while !drained(&redis) {
            assert!(
                Instant::now() < deadline,
                "{n} dispatchers: draining took too long ({kills} kills, {} dispatched)",
                dispatched(&redis)
            );
            if kills >= 2 {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            // Kill the holder at a random moment once it is dispatching.
            let before = dispatched(&redis);
            let moving = wait_until(Duration::from_secs(30), || {
                dispatched(&redis) > before || drained(&redis)
            });
            assert!(moving, "{n} dispatchers: no progress");
            std::thread::sleep(Duration::from_millis(rng.next() % 60));
            let Some(pid) = lease_holder_pid(&redis) else {
                continue;
            };
            if let Some(i) = ds.iter().position(|d| d.child.id() == pid) {
                ds[i].kill9();
                ds.remove(i);
                kills += 1;
                ds.push(start(&dir));
            }
        }
        assert!(
            kills >= 1,
            "{n} dispatchers: the buffer drained before any kill"
        );
        for d in &mut ds {
            assert!(d.is_running(), "a standby died:\n{}", d.log_text());
        }
        let logs: Vec<String> = (1..=started)
            .map(|i| std::fs::read_to_string(dir.join(format!("d{i}.log"))).unwrap_or_default())
            .collect();
        let holders = logs
            .iter()
            .filter(|l| l.contains("holding the dispatcher lease"))
            .count();
        assert!(
            holders > kills,
            "{n} dispatchers: after {kills} kill(s) a standby took over each time ({holders} holders)"
        );
        assert!(
            logs.iter().any(|l| l.contains("hot standby")),
            "{n} dispatchers: a standby said so in its log"
        );
        eprintln!("{n} dispatchers: {kills} SIGKILL(s) of the holder, {holders} holders");
        assert_matches_oracle(&redis, &dir);
    }
}
