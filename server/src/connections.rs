//! Accepting and serving connections with bounds a hostile client cannot stretch: at most
//! `max_connections` open at once (and `max_connections_per_address` from one client address), a
//! deadline for each request head that also closes idle keep-alive connections, and backpressure
//! instead of file-descriptor exhaustion: at the cap the server stops accepting (new clients wait
//! in the kernel's backlog) rather than accepting sockets it cannot serve.
//!
//! HTTP/1.1 only (what every Allowly client speaks), served by hyper with a timer so its
//! header-read timeout fires; the request bodies' own deadline is the API's (`body_timeout`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower_service::Service as _;

/// Bounds on connections; see [`crate::Config`].
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Open connections at most; at the cap the server stops accepting until one closes.
    pub max_connections: usize,
    /// Open connections from one client address at most; more are closed at once.
    pub max_connections_per_address: usize,
    /// Time a client has to send a request's head (line and headers), counted from the moment the
    /// server waits for it: so it is also how long a keep-alive connection may sit idle.
    pub header_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 4096,
            max_connections_per_address: 512,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// The client address of a request (set on every request by the connection that carries it).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// What readiness and metrics need to know about the connections.
#[derive(Debug)]
pub struct ConnectionState {
    open: AtomicUsize,
    refused: AtomicUsize,
    /// When accepting last failed (milliseconds since `started`), or -1.
    accept_failed_at: AtomicI64,
    at_capacity: AtomicBool,
    started: Instant,
}

impl ConnectionState {
    pub fn new() -> ConnectionState {
        ConnectionState {
            open: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            accept_failed_at: AtomicI64::new(-1),
            at_capacity: AtomicBool::new(false),
            started: Instant::now(),
        }
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections closed at once because their address had too many open.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// Why the server cannot take new connections now, if it cannot: it is at its connection cap,
    /// or accepting failed within the last second (out of file descriptors, say).
    pub fn cannot_accept(&self) -> Option<&'static str> {
        if self.at_capacity.load(Ordering::Relaxed) {
            return Some("the server is at its connection limit");
        }
        let failed_at = self.accept_failed_at.load(Ordering::Relaxed);
        if failed_at >= 0 && self.millis() - failed_at < 1000 {
            return Some("the server cannot accept connections");
        }
        None
    }

    fn millis(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}

/// Accepts and serves connections until `stopping` turns true; then stops accepting and asks every
/// connection to finish its request in flight and close. Returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    state: Arc<ConnectionState>,
    mut stopping: watch::Receiver<bool>,
) {
    let max_connections = within_file_limit(limits.max_connections.max(1));
    let permits = Arc::new(Semaphore::new(max_connections));
    let per_address: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let http = Arc::new(http);
    loop {
        // A permit first: at the cap, nothing is accepted until a connection closes.
        state.at_capacity.store(permits.available_permits() == 0, Ordering::Relaxed);
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit { Ok(permit) => permit, Err(_) => break },
            () = stopped(&mut stopping) => break,
        };
        state.at_capacity.store(false, Ordering::Relaxed);
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stopping) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors (or memory): wait instead of spinning on the error.
                state.accept_failed_at.store(state.millis(), Ordering::Relaxed);
                tracing::warn!(target: "allowly::serve", error = %err, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = AddressSlot::take(&per_address, peer.ip(), limits.max_connections_per_address) else {
            state.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(target: "allowly::serve", client = %peer.ip(), "too many connections from this address: closed");
            continue;
        };
        let connection = Connection { http: http.clone(), router: router.clone(), state: state.clone(), peer };
        tokio::spawn(connection.run(stream, permit, slot, stopping.clone()));
    }
    // Every connection holds a permit until it closes: all permits back means all closed.
    let total = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(total).await;
}

struct Connection {
    http: Arc<hyper::server::conn::http1::Builder>,
    router: Router,
    state: Arc<ConnectionState>,
    peer: SocketAddr,
}

impl Connection {
    async fn run(
        self,
        stream: TcpStream,
        _permit: OwnedSemaphorePermit,
        _slot: AddressSlot,
        mut stopping: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        self.state.open.fetch_add(1, Ordering::Relaxed);
        let (router, peer) = (self.router, self.peer);
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ClientAddr(peer));
            let mut router = router.clone();
            async move { router.call(request.map(axum::body::Body::new)).await.map_err(|never: Infallible| never) }
        });
        let connection = self.http.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => {}
            () = stopped(&mut stopping) => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
        self.state.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One connection's place in its address's count; given back when dropped.
struct AddressSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    address: IpAddr,
}

impl AddressSlot {
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, address: IpAddr, cap: usize) -> Option<AddressSlot> {
        let mut map = counts.lock();
        let count = map.entry(address).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot { counts: counts.clone(), address })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock();
        if let Some(count) = map.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.address);
            }
        }
    }
}

/// Completes once `stopping` is true.
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// Files the process keeps for itself beside its connections (the store, logs, the listeners).
const RESERVED_FILES: usize = 64;

/// `wanted`, or fewer if the process may not open that many files: at the cap the server waits for
/// a connection to close instead of failing to accept (`Too many open files`).
fn within_file_limit(wanted: usize) -> usize {
    let Some(limit) = open_file_limit() else { return wanted };
    let room = limit.saturating_sub(RESERVED_FILES).max(1);
    if wanted > room {
        tracing::warn!(
            target: "allowly::serve",
            max_connections = wanted,
            open_file_limit = limit,
            "the open-file limit allows {room} connections; raise it (ulimit -n) to serve more"
        );
        return room;
    }
    wanted
}

/// The soft limit on open files (Linux: `/proc/self/limits`), if known.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
