//! Connections: accepted up to `--max-connections`, each driven by hyper's
//! HTTP/1 server with the timeouts nginx puts on a slow or idle client.
//!
//! A connection is always in one [`Phase`]: reading a request's header,
//! reading its body, being answered, or idle between requests (keep-alive).
//! Only the client can be slow in the first, second and last, so those are
//! bounded: `--header-timeout` from the connection's start or the next
//! request's first byte until its header is complete, `--idle-timeout`
//! without a new request (and for a response the client stops reading); the
//! body has `--body-timeout` (enforced where it is read, `body.rs`, so the
//! client gets a 408). A connection being answered is never cut by
//! them: the server's own work has no deadline here.
//!
//! When every connection permit is taken and a client is waiting, the
//! connection that has waited longest on its client (an idle one, or one
//! with an incomplete request) is closed to make room, as nginx reuses its
//! keep-alive connections; a connection whose request is complete is never
//! taken. So a slowloris filling every slot costs real nodes at most one
//! reclaim, not the header timeout times the attacker's backlog.
//!
//! hyper's own `header_read_timeout` is off: it also runs while a keep-alive
//! connection is idle, which would make the idle timeout the header timeout.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// The limits of the connection layer (`slipway serve` flags).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Connections open at once (`--max-connections`).
    pub max_connections: usize,
    /// Longest wait for a complete request header (`--header-timeout`).
    pub header_timeout: Duration,
    /// Longest wait for the next request on a keep-alive connection, or for
    /// the client to read more of a response (`--idle-timeout`).
    pub idle_timeout: Duration,
    /// Longest wait at shutdown for requests being answered.
    pub drain_timeout: Duration,
}

/// What a connection is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// The rest of a request header (from the connection's start or the
    /// request's first byte).
    Header = 0,
    /// The rest of a request body.
    Body = 1,
    /// The server: the request is complete and being answered.
    Answering = 2,
    /// The next request, after a response (keep-alive).
    Idle = 3,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Header,
            1 => Phase::Body,
            2 => Phase::Answering,
            _ => Phase::Idle,
        }
    }

    /// Whether the connection waits on its client, so may be reclaimed.
    fn reclaimable(self) -> bool {
        self != Phase::Answering
    }
}

/// Why the server closed a connection itself.
#[derive(Debug, Clone, Copy)]
enum Closed {
    HeaderTimeout,
    IdleTimeout,
    WriteStalled,
    Reclaimed,
}

impl Closed {
    /// The `reason` label of `slipway_http_connections_closed_total`.
    fn label(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::WriteStalled => "write_stalled",
            Closed::Reclaimed => "reclaimed",
        }
    }
}

/// One connection's phase, shared by its IO, its service and the watchdog.
struct Conn {
    phase: AtomicU8,
    /// When the phase began, in milliseconds since the registry's epoch.
    since: AtomicU64,
    /// When a write last found the socket full (0: not stalled), same clock.
    stalled: AtomicU64,
    /// Asked to close to make room for a waiting client.
    reclaim: AtomicBool,
    /// Wakes the watchdog on a change of phase.
    changed: Notify,
    registry: Arc<Registry>,
}

impl Conn {
    fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    fn enter(&self, phase: Phase) {
        self.since.store(self.registry.now_ms(), Ordering::Release);
        let was = Phase::from_u8(self.phase.swap(phase as u8, Ordering::AcqRel));
        // Only a phase with a deadline can bring the watchdog's forward; for
        // the others it wakes at the old deadline and finds none (so a
        // request costs one wake-up, at its end, not one per phase).
        if matches!(phase, Phase::Header | Phase::Idle) {
            self.changed.notify_one();
        }
        if phase.reclaimable() && !was.reclaimable() {
            // A client waiting for a permit may take this one's.
            self.registry.reclaimable.notify_one();
        }
    }

    /// Moves from `from` to `to` only if still in `from`.
    fn advance(&self, from: Phase, to: Phase) {
        if self.phase() == from {
            self.enter(to);
        }
    }

    /// When the current phase runs out, and why.
    fn deadline(&self, limits: &ConnLimits) -> Option<(u64, Closed)> {
        let since = self.since.load(Ordering::Acquire);
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match self.phase() {
            Phase::Header => Some((
                since.saturating_add(ms(limits.header_timeout)),
                Closed::HeaderTimeout,
            )),
            // A response's last bytes may still be on their way (hyper ends
            // the body before it has flushed it): a client that stops
            // reading them is stalled, not idle.
            Phase::Idle => match self.stalled.load(Ordering::Acquire) {
                0 => Some((
                    since.saturating_add(ms(limits.idle_timeout)),
                    Closed::IdleTimeout,
                )),
                at => Some((
                    at.saturating_add(ms(limits.idle_timeout)),
                    Closed::WriteStalled,
                )),
            },
            // The body's deadline is `body.rs`'s (a 408); a body that is not
            // read waits on the handler, which is the server's time.
            Phase::Body | Phase::Answering => match self.stalled.load(Ordering::Acquire) {
                0 => None,
                at => Some((
                    at.saturating_add(ms(limits.idle_timeout)),
                    Closed::WriteStalled,
                )),
            },
        }
    }

    /// Completes when the connection must be closed.
    async fn watchdog(&self, limits: ConnLimits) -> Closed {
        loop {
            if self.reclaim.load(Ordering::Acquire) {
                if self.phase().reclaimable() {
                    return Closed::Reclaimed;
                }
                // Its request completed meanwhile: keep it, let the waiting
                // client look for another.
                self.reclaim.store(false, Ordering::Release);
                self.registry.evicting.fetch_sub(1, Ordering::AcqRel);
                self.registry.reclaimable.notify_one();
            }
            match self.deadline(&limits) {
                Some((at, why)) => {
                    if self.registry.now_ms() >= at {
                        return why;
                    }
                    let when = self.registry.epoch + Duration::from_millis(at);
                    tokio::select! {
                        _ = tokio::time::sleep_until(when) => {}
                        _ = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// Every open connection, for reclaiming one when a client waits.
struct Registry {
    epoch: Instant,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// Connections asked to close that have not closed yet.
    evicting: AtomicUsize,
    /// Signalled when a connection becomes reclaimable (or declines).
    reclaimable: Notify,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn open(self: &Arc<Self>) -> (u64, Arc<Conn>) {
        let conn = Arc::new(Conn {
            phase: AtomicU8::new(Phase::Header as u8),
            since: AtomicU64::new(self.now_ms()),
            stalled: AtomicU64::new(0),
            reclaim: AtomicBool::new(false),
            changed: Notify::new(),
            registry: self.clone(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, conn.clone());
        (id, conn)
    }

    fn close(&self, id: u64) {
        if let Some(c) = self.lock().remove(&id) {
            if c.reclaim.load(Ordering::Acquire) {
                self.evicting.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        // The map holds no invariant a panic could break half-way.
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the connection that has waited longest on its client to close;
    /// false when every connection is being answered.
    fn reclaim_one(&self) -> bool {
        let conns = self.lock();
        let oldest = conns
            .values()
            .filter(|c| c.phase().reclaimable() && !c.reclaim.load(Ordering::Acquire))
            .min_by_key(|c| c.since.load(Ordering::Acquire));
        match oldest {
            Some(c) => {
                c.reclaim.store(true, Ordering::Release);
                self.evicting.fetch_add(1, Ordering::AcqRel);
                c.changed.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the
/// requests being answered finish for at most `limits.drain_timeout`.
pub async fn serve(
    listener: TcpListener,
    limits: ConnLimits,
    app: Router,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let registry = Arc::new(Registry {
        epoch: Instant::now(),
        conns: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        evicting: AtomicUsize::new(0),
        reclaimable: Notify::new(),
    });
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                };
                let Some(permit) = connection_permit(&permits, &registry, &mut shutdown).await else {
                    break;
                };
                let (id, conn) = registry.open();
                let app = app.clone();
                let stop = stop_rx.clone();
                let registry = registry.clone();
                let metrics = metrics.clone();
                tasks.spawn(async move {
                    if let Some(why) = drive(stream, peer, conn, app, limits, stop).await {
                        metrics.http_connection_closed(why.label());
                    }
                    registry.close(id);
                    drop(permit);
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // Refuse new clients at once; finish what is being answered.
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            drain_secs = limits.drain_timeout.as_secs_f64(),
            "closing connections still busy after the shutdown drain"
        );
        tasks.abort_all();
    }
    Ok(())
}

/// A connection permit for a client that has been accepted: a free one, or
/// one reclaimed from a connection waiting on its client. `None`: shutdown.
async fn connection_permit(
    permits: &Arc<Semaphore>,
    registry: &Registry,
    shutdown: &mut Pin<&mut impl Future<Output = ()>>,
) -> Option<OwnedSemaphorePermit> {
    loop {
        if let Ok(p) = permits.clone().try_acquire_owned() {
            return Some(p);
        }
        if registry.evicting.load(Ordering::Acquire) == 0 {
            registry.reclaim_one();
        }
        tokio::select! {
            p = permits.clone().acquire_owned() => {
                return Some(p.expect("connection semaphore is never closed"));
            }
            _ = registry.reclaimable.notified() => {}
            _ = shutdown.as_mut() => return None,
        }
    }
}

/// Serves one connection until it ends, its watchdog fires (the reason is
/// returned) or the drain.
async fn drive(
    stream: TcpStream,
    peer: SocketAddr,
    conn: Arc<Conn>,
    app: Router,
    limits: ConnLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<Closed> {
    let io = TokioIo::new(TrackedIo {
        io: stream,
        conn: conn.clone(),
    });
    let service = ConnService {
        app,
        peer,
        conn: conn.clone(),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let served = builder.serve_connection(io, service);
    tokio::pin!(served);
    let mut draining = false;
    loop {
        tokio::select! {
            r = served.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return None;
            }
            why = conn.watchdog(limits) => {
                tracing::debug!(%peer, reason = why.label(), "closing a connection that waits on its client");
                return Some(why);
            }
            _ = stop.changed(), if !draining => {
                // Waiting on its client, there is nothing to finish.
                if conn.phase().reclaimable() {
                    return None;
                }
                draining = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The socket, telling the connection's phase when a request starts and
/// when the client stops reading.
struct TrackedIo {
    io: TcpStream,
    conn: Arc<Conn>,
}

impl TrackedIo {
    /// After a write that sent `r`'s bytes: in the idle phase, the idle time
    /// starts once the response has left, not when hyper took its last
    /// byte. (Only bytes sent count: a flush with nothing to send is no
    /// sign of the client, and hyper flushes whenever it is polled.)
    fn sent(&self, r: &Poll<io::Result<usize>>) {
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0) && self.conn.phase() == Phase::Idle {
            self.conn
                .since
                .store(self.conn.registry.now_ms(), Ordering::Release);
        }
        self.wrote(r);
    }

    fn wrote<T>(&self, r: &Poll<io::Result<T>>) {
        match r {
            Poll::Pending => {
                if self.conn.stalled.load(Ordering::Acquire) == 0 {
                    // 0 means "not stalled", so a stall at the epoch is 1 ms.
                    let now = self.conn.registry.now_ms().max(1);
                    self.conn.stalled.store(now, Ordering::Release);
                    self.conn.changed.notify_one();
                }
            }
            Poll::Ready(_) => {
                if self.conn.stalled.load(Ordering::Acquire) != 0 {
                    self.conn.stalled.store(0, Ordering::Release);
                }
            }
        }
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            // The first byte of the next request starts its header's clock.
            self.conn.advance(Phase::Idle, Phase::Header);
        }
        r
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.sent(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.sent(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.wrote(&r);
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The router as hyper calls it on one connection: the peer address as
/// `ConnectInfo` (the loopback check of `auth.rs`), and the request's and
/// response's ends marked in the connection's phase.
#[derive(Clone)]
struct ConnService {
    app: Router,
    peer: SocketAddr,
    conn: Arc<Conn>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Tracked<Body>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        use http_body::Body as _;
        let conn = self.conn.clone();
        if req.body().is_end_stream() {
            conn.enter(Phase::Answering);
        } else {
            conn.enter(Phase::Body);
        }
        let mut req = req.map(|b| {
            Body::new(Tracked {
                inner: b,
                conn: conn.clone(),
                from: Phase::Body,
                to: Phase::Answering,
                done: false,
            })
        });
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let app = self.app.clone();
        Box::pin(async move {
            let resp = match tower::ServiceExt::oneshot(app, req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok(resp.map(|b| Tracked {
                inner: b,
                conn,
                from: Phase::Answering,
                to: Phase::Idle,
                done: false,
            }))
        })
    }
}

/// A body whose end (or drop) moves its connection from `from` to `to`: the
/// request's body from [`Phase::Body`] to [`Phase::Answering`], the
/// response's from [`Phase::Answering`] to [`Phase::Idle`].
struct Tracked<B> {
    inner: B,
    conn: Arc<Conn>,
    from: Phase,
    to: Phase,
    done: bool,
}

impl<B> Tracked<B> {
    fn finish(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        if self.to == Phase::Idle {
            // A handler may answer without reading the request's body (a
            // 401, a 404): the response's end ends the request either way.
            if matches!(self.conn.phase(), Phase::Body | Phase::Answering) {
                self.conn.enter(Phase::Idle);
            }
        } else {
            self.conn.advance(self.from, self.to);
        }
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(r, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finish();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What axum's own listener does on an accept error: a client that gave up
/// is skipped; anything else (out of file descriptors) is logged and
/// retried after a pause rather than spinning.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
