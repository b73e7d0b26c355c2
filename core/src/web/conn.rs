//! What a connection may hold before it has said anything useful.
//!
//! An HTTP server that waits for a client for ever can be emptied by anyone who opens
//! connections and says nothing: every silent socket holds a file descriptor and a task, and
//! at the open-files limit `accept` fails for everyone (`/healthz` included). So:
//!
//! - every connection is admitted against a total and a per-address count ([`Admission`]);
//!   one over either is closed as soon as it is accepted, never left in the kernel's backlog
//!   where it would delay everyone else's;
//! - its first bytes must arrive within the connection timeout ([`FirstBytes`]): before the
//!   first byte of plain HTTP, after a TLS handshake, and inside the HTTP/1-vs-2 detection,
//!   which reads up to the 24 bytes of the HTTP/2 preface and has no timeout of its own.
//!
//! The later phases are hyper's: the header read timeout (HTTP/1, also between requests of a
//! kept-alive connection) and keep-alive pings that a silent HTTP/2 peer does not answer.

use ipnet::IpNet;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes after which a connection has shown it speaks: the HTTP/2 preface's length, which is
/// also less than any HTTP/1 request a browser or tool sends.
pub const FIRST_BYTES: usize = 24;

/// File descriptors kept for everything but client connections (Redis, GeoIP, logs, ...).
const RESERVED_FDS: usize = 256;

/// Counts open connections in all and per address.
pub struct Admission {
    total: usize,
    per_address: usize,
    trusted: Vec<IpNet>,
    open: AtomicUsize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
    /// What each open connection is doing, to find an idle one when all places are taken.
    conns: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
    /// Connections closed at once because a limit was reached.
    pub refused: AtomicU64,
    /// Idle connections closed to make room for a new one.
    pub evicted: AtomicU64,
    /// Connections closed because they said nothing in time.
    pub timed_out: AtomicU64,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Total,
    PerAddress,
}

/// An admitted connection; counted until dropped.
pub struct Ticket {
    admission: Arc<Admission>,
    counted_as: Option<IpAddr>,
    id: u64,
    /// What the connection is doing (shared with the requests it carries).
    pub activity: Arc<Activity>,
}

/// Whether a connection carries a request, since when it carries none, and the signal that
/// closes it. A connection that carries no request can be held by anyone at no cost to them
/// (HTTP/2 pings answered, or a small request every few seconds): such connections are the
/// ones closed when they have been idle too long, or when a new client needs the place.
pub struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since [`Activity::epoch`] when the last request ended (or the connection
    /// was accepted).
    idle_since_ms: AtomicU64,
    epoch: std::time::Instant,
    /// Notified to close the connection (it was idle and its place was needed).
    pub close: tokio::sync::Notify,
    closing: std::sync::atomic::AtomicBool,
    /// Whether it carried a request yet.
    served: std::sync::atomic::AtomicBool,
    /// Whether it carried a request of a signed-in user: such connections are closed to make
    /// room only when no other idle one is left.
    signed_in: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            close: tokio::sync::Notify::new(),
            closing: std::sync::atomic::AtomicBool::new(false),
            served: std::sync::atomic::AtomicBool::new(false),
            signed_in: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The connection carried a request with a valid session.
    pub fn mark_signed_in(&self) {
        self.signed_in.store(true, Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A request starts; the guard ends it when dropped (with the response's body).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.served.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// How long the connection has carried no request (zero while one is in progress).
    pub fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let since = self.idle_since_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(since))
    }
}

/// An answer's body that keeps its connection marked busy until it is sent (or dropped).
pub struct Tracked {
    inner: axum::body::Body,
    _busy: InFlight,
}

impl Tracked {
    pub fn new(inner: axum::body::Body, busy: InFlight) -> Tracked {
        Tracked { inner, _busy: busy }
    }
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A request in progress on a connection (see [`Activity::begin`]).
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .idle_since_ms
            .store(self.0.now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut c) = self.admission.conns.lock() {
            c.remove(&self.id);
        }
        self.admission.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.counted_as {
            if let Ok(mut m) = self.admission.by_address.lock() {
                if let Some(n) = m.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(&ip);
                    }
                }
            }
        }
    }
}

/// The soft limit of open files, after `raise_fd_limit`.
fn open_files_limit() -> Option<usize> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } == 0;
    (ok && l.rlim_cur != libc::RLIM_INFINITY).then_some(l.rlim_cur as usize)
}

impl Admission {
    /// `total` is lowered to what the open-files limit leaves after a reserve, so the server
    /// never runs out of descriptors for its own work or for the next `accept`.
    pub fn new(total: usize, per_address: usize, trusted: Vec<IpNet>) -> Admission {
        let room = open_files_limit().map(|n| n.saturating_sub(RESERVED_FDS).max(16));
        let total = match room {
            Some(room) if room < total => {
                tracing::info!(
                    "at most {room} connections at once (the open-files limit allows no more; \
                     [mispdash] max_connections says {total})"
                );
                room
            }
            _ => total,
        };
        Admission {
            total,
            per_address,
            trusted,
            open: AtomicUsize::new(0),
            by_address: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Whether `ip` is a configured reverse proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// Counts a new connection from `ip`, or says which limit it is over. A trusted proxy's
    /// connections carry many clients, so they count only towards the total. When the total
    /// is reached, an idle connection (carrying no request) is closed to make room, the one
    /// idle the longest among those no signed-in user used first: places cannot be hoarded by
    /// connections that only keep themselves alive, and the connections of users who are
    /// signed in are the last to go.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let ip = canonical(ip);
        let counted = address_group(ip);
        let counted_as = match self.is_trusted(ip) {
            true => None,
            false => {
                let mut m = super::lock(&self.by_address);
                let n = m.entry(counted).or_insert(0);
                if *n >= self.per_address {
                    drop(m);
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(Refusal::PerAddress);
                }
                *n += 1;
                Some(counted)
            }
        };
        // From here the address is counted: a refusal gives its place back through the
        // ticket's drop.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let ticket = Ticket {
            admission: self.clone(),
            counted_as,
            id,
            activity: Arc::new(Activity::new()),
        };
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.total && !self.evict_idle() {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Total);
        }
        let mut c = super::lock(&self.conns);
        c.insert(id, ticket.activity.clone());
        Ok(ticket)
    }

    /// Asks an idle connection to close: the anonymous one idle the longest, else the
    /// signed-in one idle the longest; false when none is idle (every connection carries a
    /// request: live streams, say).
    fn evict_idle(&self) -> bool {
        let c = super::lock(&self.conns);
        let victim = c
            .values()
            .filter(|a| !a.closing.load(Ordering::Relaxed))
            .map(|a| (a.signed_in.load(Ordering::Relaxed), a.idle_for(), a))
            .filter(|(_, idle, _)| !idle.is_zero())
            // Anonymous before signed-in, then the longest idle.
            .max_by_key(|(signed_in, idle, _)| (!*signed_in, *idle))
            .map(|(_, _, a)| a.clone());
        drop(c);
        let Some(victim) = victim else {
            return false;
        };
        victim.closing.store(true, Ordering::Relaxed);
        victim.close.notify_one();
        self.evicted.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// Resolves when connection `activity` should close: asked to (its place was needed), or idle
/// for `idle_timeout` after a request (HTTP/2 has no timeout of its own between requests: a
/// client answering pings would hold it for ever). Before its first request a connection
/// gets twice that: one silent from the start is [`FirstBytes`]'s to close (and count), one
/// that sent only the HTTP/2 preface and answers pings is closed here. One timer per
/// connection, set to when it would time out, not a tick.
pub async fn until_closed(activity: &Activity, idle_timeout: Duration) {
    loop {
        let limit = match activity.served.load(Ordering::Relaxed) {
            true => idle_timeout,
            false => idle_timeout * 2,
        };
        let wait = if activity.in_flight.load(Ordering::Relaxed) > 0 {
            idle_timeout
        } else {
            let idle = activity.idle_for();
            if idle >= limit {
                activity.closing.store(true, Ordering::Relaxed);
                return;
            }
            limit - idle
        };
        tokio::select! {
            _ = activity.close.notified() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// IPv4 clients of a dual-stack socket arrive as `::ffff:a.b.c.d`; count and match them as
/// the IPv4 address they are.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The client's address: the TCP peer, or behind a trusted reverse proxy the address the
/// proxies forwarded (`X-Forwarded-For`, read from the right: the nearest address that is not
/// itself a trusted proxy; the left part can be written by anyone). From a peer that is not a
/// trusted proxy the header is ignored.
pub fn client_ip(admission: &Admission, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
    let peer = canonical(peer);
    if !admission.is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // Unreadable: the last proxy that was trusted is as far as we can see.
            break;
        };
        client = canonical(ip);
        if !admission.is_trusted(client) {
            break;
        }
    }
    client
}

/// The error of a connection closed because its client said nothing in time (told apart from
/// a client that stopped reading, which the write timeout closes).
#[derive(Debug)]
pub struct Silent;

impl std::fmt::Display for Silent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the client sent nothing in time")
    }
}

impl std::error::Error for Silent {}

/// What a per-address limit counts under: the address, or an IPv6 address's /64 (a host gets
/// a whole /64 and can use any address in it). Connections, login attempts and live streams
/// all group so.
pub fn address_group(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        v4 => v4,
    }
}

/// Reads that must bring [`FIRST_BYTES`] bytes before a deadline; after them, plain reads.
pub struct FirstBytes<IO> {
    inner: IO,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    left: usize,
    admission: Arc<Admission>,
}

impl<IO> FirstBytes<IO> {
    pub fn new(inner: IO, timeout: Duration, admission: Arc<Admission>) -> Self {
        FirstBytes {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
            left: FIRST_BYTES,
            admission,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for FirstBytes<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(d) = this.deadline.as_mut() {
            if d.as_mut().poll(cx).is_ready() {
                this.deadline = None;
                this.left = 0;
                this.admission.timed_out.fetch_add(1, Ordering::Relaxed);
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, Silent)));
            }
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let n = buf.filled().len() - before;
            this.left = this.left.saturating_sub(n);
            if this.left == 0 || n == 0 {
                this.deadline = None;
            }
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for FirstBytes<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_in_all() {
        let proxy: IpNet = "10.0.0.0/8".parse().expect("net");
        let a = Arc::new(Admission {
            total: 5,
            per_address: 2,
            trusted: vec![proxy],
            open: AtomicUsize::new(0),
            by_address: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
        });
        let one: IpAddr = "192.0.2.1".parse().expect("ip");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        let t1 = a.admit(one).expect("first");
        let _t2 = a.admit(mapped).expect("second, the same address");
        assert_eq!(a.admit(one).err(), Some(Refusal::PerAddress));
        drop(t1);
        let _t3 = a.admit(one).expect("a slot came free");
        let v6a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let v6b: IpAddr = "2001:db8:1:2:ffff::7".parse().expect("ip");
        let _v1 = a.admit(v6a).expect("v6");
        let _v2 = a.admit(v6b).expect("v6, same /64");
        assert_eq!(a.admit(v6a).err(), Some(Refusal::PerAddress), "one /64");
        drop((_v1, _v2));
        let p: IpAddr = "10.1.2.3".parse().expect("ip");
        // Every connection busy with a request: the total refuses.
        let busy: Vec<_> = [&_t2, &_t3].iter().map(|t| t.activity.begin()).collect();
        let p1 = a.admit(p).expect("proxy");
        let p2 = a.admit(p).expect("proxy");
        let p3 = a.admit(p).expect("proxy: no per-address limit");
        let mut busy2: Vec<_> = [&p1, &p2, &p3].iter().map(|t| t.activity.begin()).collect();
        assert_eq!(a.admit(p).err(), Some(Refusal::Total));
        assert_eq!(a.refused.load(Ordering::Relaxed), 3);
        assert_eq!(a.open(), 5);
        // One of them idle: it is asked to close, and the new one is let in.
        drop(busy2.pop());
        std::thread::sleep(Duration::from_millis(5));
        let _p4 = a.admit(p).expect("an idle connection made room");
        assert!(p3.activity.closing.load(Ordering::Relaxed));
        assert_eq!(a.evicted.load(Ordering::Relaxed), 1);
        drop((busy, busy2));
    }

    #[test]
    fn signed_in_connections_are_closed_last() {
        let a = Arc::new(Admission::new(3, 10, vec![]));
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let user = a.admit(ip).expect("user");
        drop(user.activity.begin());
        user.activity.mark_signed_in();
        std::thread::sleep(Duration::from_millis(20));
        // Two anonymous connections, idle for less time than the signed-in one.
        let anon: Vec<_> = (0..2).map(|_| a.admit(ip).expect("anonymous")).collect();
        for t in &anon {
            drop(t.activity.begin());
        }
        std::thread::sleep(Duration::from_millis(5));
        let _new = a.admit(ip).expect("room made");
        assert!(!user.activity.closing.load(Ordering::Relaxed));
        assert_eq!(
            anon.iter()
                .filter(|t| t.activity.closing.load(Ordering::Relaxed))
                .count(),
            1
        );
        // With no anonymous idle connection left, the signed-in one goes.
        let _busy: Vec<_> = anon
            .iter()
            .filter(|t| !t.activity.closing.load(Ordering::Relaxed))
            .map(|t| t.activity.begin())
            .chain(std::iter::once(_new.activity.begin()))
            .collect();
        let _next = a.admit(ip).expect("room made again");
        assert!(user.activity.closing.load(Ordering::Relaxed));
    }

    #[test]
    fn forwarded_addresses_only_from_trusted_proxies() {
        let a = Admission::new(10, 10, vec!["127.0.0.1/32".parse().expect("net")]);
        let proxy: IpAddr = "127.0.0.1".parse().expect("ip");
        let other: IpAddr = "127.0.0.2".parse().expect("ip");
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(client_ip(&a, proxy, &["192.0.2.7"]), ip("192.0.2.7"));
        // Spoofed left part: the nearest untrusted hop is the client.
        assert_eq!(
            client_ip(&a, proxy, &["6.6.6.6, 192.0.2.7"]),
            ip("192.0.2.7")
        );
        assert_eq!(
            client_ip(&a, proxy, &["192.0.2.7", "127.0.0.1"]),
            ip("192.0.2.7")
        );
        assert_eq!(client_ip(&a, proxy, &[]), proxy);
        assert_eq!(client_ip(&a, proxy, &["garbage"]), proxy);
        // Not a proxy: the header is ignored.
        assert_eq!(client_ip(&a, other, &["192.0.2.7"]), other);
    }

    #[tokio::test]
    async fn silent_peers_time_out_and_talkers_do_not() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let a = Arc::new(Admission::new(10, 10, Vec::new()));
        let (client, server) = tokio::io::duplex(64);
        let mut r = FirstBytes::new(server, Duration::from_millis(100), a.clone());
        let mut buf = [0u8; 8];
        let e = r.read(&mut buf).await.expect_err("silence");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(a.timed_out.load(Ordering::Relaxed), 1);
        drop(client);

        let (mut client, server) = tokio::io::duplex(64);
        let mut r = FirstBytes::new(server, Duration::from_millis(100), a.clone());
        client.write_all(&[b'x'; FIRST_BYTES]).await.expect("write");
        let mut got = Vec::new();
        while got.len() < FIRST_BYTES {
            let n = r.read(&mut buf).await.expect("read");
            got.extend_from_slice(&buf[..n]);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        client.write_all(b"later").await.expect("write");
        let n = r
            .read(&mut buf)
            .await
            .expect("no deadline after the first bytes");
        assert_eq!(&buf[..n], b"later");
    }
}

/// Whether the connection a request came on was TLS, as the host that accepted it knows:
/// the standalone server's own TLS, or under a WSGI server its `wsgi.url_scheme` / `HTTPS`
/// (Apache terminates TLS there and the dashboard would otherwise take every request for plain
/// HTTP). Absent, the server's own setting decides.
#[derive(Clone, Copy, Debug)]
pub struct ArrivedOverTls(pub bool);
