//! The accept loop: at most `max_connections` client connections at once, each
//! closed when it is too slow to send a request header (`header_read_timeout`)
//! or waits too long for its next request (`idle_timeout`).
//!
//! A connection goes through three phases, kept by its [`Clock`]:
//!
//! - **head**: from the connection's start (TLS handshake included), or from the
//!   first byte of a later request, until hyper has the whole request header.
//!   Bounded by `header_read_timeout`, so a client that sends nothing, or one
//!   header byte at a time (slowloris), loses its slot.
//! - **busy**: from the request reaching the router until its response body is
//!   finished. Not bounded here: the upstream, lock and decision timeouts bound
//!   the proxy's own work, and a blob may legitimately take long to stream.
//! - **idle**: a kept-alive connection between a response and the first byte of
//!   the next request. Bounded by `idle_timeout`.
//!
//! hyper's own `header_read_timeout` is not used: it starts when hyper begins
//! waiting for a request, so it would also cut kept-alive connections after the
//! (shorter) header timeout, and it does not cover the TLS handshake.
//!
//! When every slot is taken, the loop stops accepting: new connections wait in
//! the kernel's listen queue (they hold no descriptor of the proxy; beyond its
//! 128 places their SYNs are dropped and retried by the client) until a slot
//! frees, which the two timeouts guarantee for connections that send nothing.

use super::{AppState, ServeError};
use crate::metrics::ConnectionTimeout;
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How often, at most, a full connection table is logged.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Accepts connections and serves `app` on each until `shutdown` completes, then
/// lets the open connections finish their requests.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let max = state.config.max_connections;
    state.metrics.connections_max(max);
    let slots = Arc::new(Semaphore::new(max));
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut warned: Option<Instant> = None;
    loop {
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => break,
            Err(TryAcquireError::NoPermits) => {
                state.metrics.connection_limit_reached();
                if warned.is_none_or(|at| at.elapsed() >= FULL_WARNING_EVERY) {
                    warned = Some(Instant::now());
                    tracing::warn!(
                        "all {max} connection slots are taken (max_connections); new connections wait until one frees"
                    );
                }
                tokio::select! {
                    permit = Arc::clone(&slots).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: keep serving the others.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        tokio::spawn(connection(
            tcp,
            peer,
            tls.clone(),
            app.clone(),
            Arc::clone(&state),
            stopped.clone(),
            permit,
        ));
    }
    drop(listener);
    // Idle connections close now; the others after their current request.
    let _ = stop.send(true);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Serves one connection while its [`Clock`] allows.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Router,
    state: Arc<AppState>,
    mut stopped: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let _open = Open::new(&state);
    let clock = Arc::new(Clock::new());
    let io = Watched {
        inner: tcp,
        clock: Arc::clone(&clock),
    };
    let served = async {
        match tls {
            Some(acceptor) => match acceptor.accept(io).await {
                Ok(stream) => http1(stream, &app, &clock, &mut stopped).await,
                Err(err) => Err(format!("TLS handshake failed: {err}")),
            },
            None => http1(io, &app, &clock, &mut stopped).await,
        }
    };
    let config = &state.config;
    tokio::select! {
        result = served => if let Err(err) = result {
            tracing::debug!(%peer, "connection ended: {err}");
        },
        timeout = clock.expiry(config.header_read_timeout, config.idle_timeout) => {
            state.metrics.connection_timeout(timeout);
            tracing::debug!(%peer, "connection closed: {timeout:?} timeout");
        },
    }
}

/// Serves HTTP/1.1 on `io` until the client goes, or shutdown closes it between
/// requests.
async fn http1<I>(
    io: I,
    app: &Router,
    clock: &Arc<Clock>,
    stopped: &mut watch::Receiver<bool>,
) -> Result<(), String>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = app.clone();
    let clock = Arc::clone(clock);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        clock.busy();
        let idle = IdleOnDrop(Arc::clone(&clock));
        let response = app.clone().oneshot(request.map(Body::new));
        async move {
            let response = match response.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|body| Tracked { body, _idle: idle }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The connection's `Clock` bounds the header read (see the module's doc).
    builder.header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(io), service));
    tokio::select! {
        result = conn.as_mut() => return result.map_err(|err| err.to_string()),
        _ = stopped.wait_for(|stopped| *stopped) => {}
    }
    conn.as_mut().graceful_shutdown();
    conn.await.map_err(|err| err.to_string())
}

/// Counts the connection in `taglock_connections_open` while it lives.
struct Open<'a>(&'a AppState);

impl<'a> Open<'a> {
    fn new(state: &'a AppState) -> Open<'a> {
        state.metrics.connection_opened();
        Open(state)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.metrics.connection_closed();
    }
}

/// Where a connection is in its life, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request header.
    Head { since: Instant },
    /// A request is being answered.
    Busy,
    /// Kept alive, waiting for the next request's first byte.
    Idle { since: Instant },
}

/// A connection's phase, shared by its reads, its service and its watchdog.
#[derive(Debug)]
struct Clock {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Clock {
    /// A new connection: its header clock runs from now.
    fn new() -> Clock {
        Clock {
            phase: Mutex::new(Phase::Head {
                since: Instant::now(),
            }),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
        self.changed.notify_one();
    }

    /// A request header is complete and the request reaches the router.
    fn busy(&self) {
        self.set(Phase::Busy);
    }

    /// The response is finished: the connection waits for another request.
    fn idle(&self) {
        self.set(Phase::Idle {
            since: Instant::now(),
        });
    }

    /// Bytes came in: on an idle connection, a new request's header begins.
    fn bytes_arrived(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*phase, Phase::Idle { .. }) {
            *phase = Phase::Head {
                since: Instant::now(),
            };
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// Completes when the connection overstays its current phase's bound.
    async fn expiry(&self, header: Duration, idle: Duration) -> ConnectionTimeout {
        loop {
            let phase = self.phase();
            let (deadline, timeout) = match phase {
                Phase::Busy => {
                    self.changed.notified().await;
                    continue;
                }
                Phase::Head { since } => (since + header, ConnectionTimeout::Header),
                Phase::Idle { since } => (since + idle, ConnectionTimeout::Idle),
            };
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    // The phase may have moved on just as the deadline passed.
                    if self.phase() == phase {
                        return timeout;
                    }
                }
                () = self.changed.notified() => {}
            }
        }
    }
}

/// Marks the connection idle when the response body is done with (written to
/// the end, or dropped with the connection).
struct IdleOnDrop(Arc<Clock>);

impl Drop for IdleOnDrop {
    fn drop(&mut self) {
        self.0.idle();
    }
}

/// A response body that marks its connection idle once it is gone.
struct Tracked {
    body: Body,
    _idle: IdleOnDrop,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A client stream that tells its [`Clock`] when bytes arrive.
struct Watched<S> {
    inner: S,
    clock: Arc<Clock>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.clock.bytes_arrived();
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_clock_bounds_headers_and_idleness_but_not_requests() {
        let header = Duration::from_secs(10);
        let idle = Duration::from_secs(60);
        let clock = Clock::new();
        // A fresh connection that sends nothing: the header bound.
        let started = Instant::now();
        assert_eq!(clock.expiry(header, idle).await, ConnectionTimeout::Header);
        assert_eq!(started.elapsed(), header);

        // A request being answered is not bounded; once done, idleness is.
        clock.busy();
        let waited = tokio::time::timeout(Duration::from_secs(3600), clock.expiry(header, idle));
        assert!(waited.await.is_err(), "a busy connection never expires");
        clock.idle();
        let started = Instant::now();
        assert_eq!(clock.expiry(header, idle).await, ConnectionTimeout::Idle);
        assert_eq!(started.elapsed(), idle);

        // The next request's first byte starts its header clock.
        clock.idle();
        tokio::time::advance(Duration::from_secs(59)).await;
        clock.bytes_arrived();
        let started = Instant::now();
        assert_eq!(clock.expiry(header, idle).await, ConnectionTimeout::Header);
        assert_eq!(started.elapsed(), header);
    }
}
