//! N concurrent Server-Sent-Events clients on one stream route, for the fan-out benchmark
//! (`bench/http_bench.sh`, `SSE_CLIENT=rust`). The Python clients (`bench/http_sse_clients.py`)
//! could not read 10,000 streams beside the server on two cores; these read each chunk once,
//! count events with `memchr`, and keep a few integers per client.
//!
//! While the clients listen, a probe is published on the live channel every `--probe-ms` (a
//! keepalive whose log holds the send time in ns, zmqName "bench-probe"); each client measures
//! how long each probe took to reach it. At the end (`--duration` seconds after every client
//! connected, then `--drain` seconds of quiet) it prints the same JSON as the Python clients.

use clap::Parser;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const MARK: &[u8] = b"\"zmqName\": \"bench-probe\"";
const LOG: &[u8] = b"\"log\": [";
const DATA: &[u8] = b"\ndata: ";

#[derive(Parser)]
struct Args {
    #[arg(long)]
    port: u16,
    #[arg(long)]
    redis_port: u16,
    #[arg(short = 'n', default_value_t = 1000)]
    n: usize,
    /// Client addresses: K loopback addresses from 127.0.0.1, in turn (as K machines would be,
    /// for the server's per-address caps).
    #[arg(long, default_value_t = 1)]
    sources: usize,
    #[arg(long, default_value = "/_logs")]
    path: String,
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    #[arg(long, default_value_t = 3.0)]
    drain: f64,
    #[arg(long, default_value_t = 100)]
    probe_ms: u64,
    #[arg(long, default_value = "1")]
    channel: String,
    /// Touched once every client is connected.
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

#[derive(Default)]
struct Client {
    connected: AtomicBool,
    closed: AtomicBool,
    events: AtomicU64,
    /// Probe delivery times in ms (each client its own lock: read at the end, when the
    /// readers are stopped wherever they are).
    latencies: Mutex<Vec<f64>>,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn source(i: usize, sources: usize) -> Option<IpAddr> {
    (sources > 1).then(|| {
        let n = i % sources;
        IpAddr::V4(Ipv4Addr::new(127, 0, (n / 250) as u8, 1 + (n % 250) as u8))
    })
}

async fn connect(port: u16, from: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let s = TcpSocket::new_v4()?;
    if let Some(ip) = from {
        s.bind(SocketAddr::new(ip, 0))?;
    }
    s.connect(to).await
}

/// Reads one stream until it ends or the process stops; counts events and times probes.
async fn run_client(c: Arc<Client>, a: Arc<Args>, from: Option<IpAddr>) -> std::io::Result<()> {
    let mut s = connect(a.port, from).await?;
    s.write_all(
        format!(
            "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
            a.path
        )
        .as_bytes(),
    )
    .await?;
    let mut buf = vec![0u8; 256 << 10];
    // The answer's head, then the events: what is left of a chunk after the head.
    let mut head = Vec::new();
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let now = now_ns();
        let mut chunk = &buf[..n];
        if !c.connected.load(Ordering::Relaxed) {
            head.extend_from_slice(chunk);
            let Some(end) = memchr::memmem::find(&head, b"\r\n\r\n") else {
                continue;
            };
            let status = head.split(|b| *b == b'\n').next().unwrap_or_default();
            if !status.windows(5).any(|w| w == b" 200 ") {
                return Err(std::io::Error::other(
                    String::from_utf8_lossy(status).into_owned(),
                ));
            }
            c.connected.store(true, Ordering::Relaxed);
            chunk = &[];
            tail = head.split_off(end + 4);
        }
        tail.extend_from_slice(chunk);
        // Only complete events (up to the last blank line) are read; the rest waits for the
        // next read, so an event split across reads is counted and timed once.
        let Some(end) = memchr::memmem::rfind(&tail, b"\n\n") else {
            continue;
        };
        let complete = &tail[..end + 2];
        let data = memchr::memmem::find_iter(complete, DATA).count();
        c.events.fetch_add(data as u64, Ordering::Relaxed);
        for j in memchr::memmem::find_iter(complete, MARK) {
            if let Some(k) = memchr::memmem::rfind(&complete[..j], LOG) {
                let digits = &complete[k + LOG.len()..];
                let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
                if let Some(sent) = std::str::from_utf8(&digits[..len])
                    .ok()
                    .and_then(|d| d.parse::<u128>().ok())
                {
                    if let Ok(mut l) = c.latencies.lock() {
                        l.push(now.saturating_sub(sent) as f64 / 1e6);
                    }
                }
            }
        }
        tail.drain(..end + 2);
    }
    Ok(())
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Publishes a probe every `every` until `stop`; returns how many.
async fn prober(redis_port: u16, channel: String, every: Duration, stop: Arc<AtomicBool>) -> u64 {
    let Ok(mut r) = TcpStream::connect(("127.0.0.1", redis_port)).await else {
        eprintln!("sse-load: cannot reach Redis on port {redis_port}: no probes");
        return 0;
    };
    let mut sent = 0;
    let mut reply = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        let msg = format!(
            "{{\"name\": \"Keepalive\", \"log\": \"[{}]\", \"zmqName\": \"bench-probe\"}}",
            now_ns()
        );
        if r.write_all(&resp(&["PUBLISH", &channel, &msg]))
            .await
            .is_err()
            || r.read(&mut reply).await.is_err()
        {
            break;
        }
        sent += 1;
        tokio::time::sleep(every).await;
    }
    sent
}

fn pct(xs: &[f64], p: usize) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let i = (xs.len() * p / 100).min(xs.len() - 1);
    Some((xs[i] * 100.0).round() / 100.0)
}

#[tokio::main]
async fn main() {
    let a = Arc::new(Args::parse());
    let clients: Vec<Arc<Client>> = (0..a.n).map(|_| Arc::default()).collect();
    let mut tasks = Vec::with_capacity(a.n);
    for (i, c) in clients.iter().enumerate() {
        let (c, a2) = (c.clone(), a.clone());
        let from = source(i, a.sources);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = run_client(c.clone(), a2, from).await {
                if !c.connected.load(Ordering::Relaxed) {
                    eprintln!("sse-load: client {i}: {e}");
                }
            }
            c.closed.store(true, Ordering::Relaxed);
        }));
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let t0 = std::time::Instant::now();
    while clients.iter().any(|c| !c.connected.load(Ordering::Relaxed))
        && t0.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(f) = &a.ready_file {
        if let Err(e) = std::fs::write(f, b"") {
            eprintln!("sse-load: cannot write {}: {e}", f.display());
        }
    }
    // A moment for the harness to read the server's counters before the first probe.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(prober(
        a.redis_port,
        a.channel.clone(),
        Duration::from_millis(a.probe_ms),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs_f64(a.duration)).await;
    stop.store(true, Ordering::Relaxed);
    let probes = probe.await.unwrap_or(0);
    tokio::time::sleep(Duration::from_secs_f64(a.drain)).await;
    let closed = clients
        .iter()
        .filter(|c| c.closed.load(Ordering::Relaxed))
        .count();
    for t in &tasks {
        t.abort();
    }
    let mut lat: Vec<f64> = clients
        .iter()
        .flat_map(|c| c.latencies.lock().map(|l| l.clone()).unwrap_or_default())
        .collect();
    lat.sort_by(f64::total_cmp);
    let events: Vec<u64> = clients
        .iter()
        .map(|c| c.events.load(Ordering::Relaxed))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "clients": a.n,
            "client_processes": 1,
            "client": "rust (bench/sse-load)",
            "connected": clients.iter().filter(|c| c.connected.load(Ordering::Relaxed)).count(),
            "dropped_before_end": closed,
            "events_min": events.iter().min().copied().unwrap_or(0),
            "events_max": events.iter().max().copied().unwrap_or(0),
            "probes_sent": probes,
            "probe_deliveries": lat.len(),
            "probe_deliveries_expected": probes * a.n as u64,
            "deliveries": lat.len(),
            "latency_ms_p50": pct(&lat, 50),
            "latency_ms_p99": pct(&lat, 99),
            "latency_ms_max": pct(&lat, 100),
        })
    );
}
