//! What the server lets in during a boot storm: a bound on the node requests
//! answered at once ([`admit`], 429 beyond it) and on open connections
//! ([`BoundedListener`], the kernel backlog beyond it).
//!
//! Both use a `tokio::sync::Semaphore`, so neither takes a lock of ours nor
//! grows with the number of waiting nodes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AppError;
use crate::metrics::Metrics;

/// Seconds a refused node is told to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 1;

/// The admission limit shared by every node route of one server.
#[derive(Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Admission {
    /// `max_in_flight` requests answered at once (at least one).
    pub fn new(max_in_flight: usize, metrics: Arc<Metrics>) -> Admission {
        Admission {
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
            metrics,
        }
    }
}

/// Middleware of the node routes (boot data, status reports): takes a permit
/// before the handler runs, so before the body is read, and holds it until
/// the handler returns; with none free the node gets 429 and `Retry-After`
/// at once instead of queueing in memory.
pub async fn admit(State(adm): State<Admission>, req: Request, next: Next) -> Response {
    match adm.permits.try_acquire() {
        Ok(_permit) => next.run(req).await,
        Err(_) => {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            adm.metrics.http_rejected(route);
            too_many_requests()
        }
    }
}

/// The 429 of a full server: Drydock's Status and `Retry-After`.
fn too_many_requests() -> Response {
    let mut r = AppError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        format!(
            "the server is answering as many node requests as it allows \
             (--max-in-flight); retry after {RETRY_AFTER_SECS} s"
        ),
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    r
}

/// A TCP listener that holds a permit per open connection: at
/// `max_connections` it stops accepting until one closes, and further clients
/// wait in the kernel's backlog (costing the server no memory).
pub struct BoundedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl BoundedListener {
    /// Wraps `inner`; at most `max_connections` (at least one) open at once.
    pub fn new(inner: TcpListener, max_connections: usize) -> BoundedListener {
        BoundedListener {
            inner,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
        }
    }
}

/// An accepted connection; its permit goes back when hyper drops it.
pub struct BoundedIo {
    io: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl axum::serve::Listener for BoundedListener {
    type Io = BoundedIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("connection semaphore is never closed");
        loop {
            match self.inner.accept().await {
                Ok((io, addr)) => {
                    return (
                        BoundedIo {
                            io,
                            _permit: permit,
                        },
                        addr,
                    )
                }
                Err(e) => accept_failed(e).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// What axum's own `TcpListener` does on an accept error: a client that gave
/// up is skipped; anything else (out of file descriptors) is logged and
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

impl AsyncRead for BoundedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for BoundedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
