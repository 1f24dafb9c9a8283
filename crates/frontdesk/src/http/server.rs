//! The admin listener's connections, with every cost bounded
//! (`[limits.http]`, read at start).
//!
//! `axum::serve` sets no timeouts and no caps: idle and slowloris
//! connections stayed open until the file-descriptor limit, and each held
//! `POST /agent/login` kept up to axum's 2 MB body limit. So the daemon
//! runs its own accept loop and serves each connection with hyper's
//! HTTP/1.1 connection builder directly:
//!
//! - at most `connections` at once, and at most `connections_per_source`
//!   from one untrusted source (`guard::SourceSlots`); a connection past
//!   either is closed at once, before any TLS handshake (with `--sips` the
//!   handshake runs through its own [`TlsGate`], with the SIP handshake
//!   timeout);
//! - the request's headers within `header_timeout` (hyper's header read
//!   timeout, which also closes a kept-alive connection that sends no next
//!   request), its headers in at most [`MAX_BUFFER`] bytes;
//! - its body within `body_timeout` and at most `max_body` bytes
//!   (`max_login_body` for `POST /agent/login`, `max_lead_body` for
//!   `POST /api/leads`), read by [`body_guard`]
//!   before any handler runs: a declared length over the cap is refused
//!   with 413 at once, a late body gets 408, and both close the
//!   connection;
//! - a connection on which no byte moves either way for `idle_timeout` is
//!   closed (a client that stops reading a response, or an event stream).
//!
//! A held request therefore costs a task, hyper's buffers and at most the
//! body cap: kilobytes. The peer's address is given to the handlers as
//! `ConnectInfo<SocketAddr>`, as `axum::serve` did. On shutdown the loop
//! stops accepting and each connection finishes its request in flight.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use guard::{HttpLimits, SourceSlots, WarnEvery};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use sip::transport::tls::TlsGate;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use super::error_response;
use crate::app::LiveDialplan;

/// hyper's read buffer at most: the request line and headers must fit.
/// (hyper's own minimum is 8 KiB.)
pub const MAX_BUFFER: usize = 16 * 1024;

/// How often, at most, refused connections are logged at warn.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` (over TLS through `tls` when given) within
/// `limits`, until `shutdown`; then lets requests in flight finish.
/// `dialplan` says which sources are trusted (per-source caps spare them).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsGate>,
    router: Router,
    limits: HttpLimits,
    dialplan: Arc<LiveDialplan>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(
        limits.clone(),
        body_guard,
    ));
    let shared = Arc::new(Semaphore::new(limits.connections as usize));
    let slots = SourceSlots::new();
    let connections = TaskTracker::new();
    let mut warn_refused = WarnEvery::new(WARN_EVERY);
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(%error, "http accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ip = remote.ip();
        let slot = if dialplan.current().trust().is_trusted(ip) {
            None
        } else {
            match slots.try_take(ip, limits.connections_per_source) {
                Some(slot) => Some(slot),
                None => {
                    refused(&mut warn_refused, ip, "per_source", || {
                        format!(
                            "the source holds {} connections, its most",
                            limits.connections_per_source
                        )
                    });
                    continue;
                }
            }
        };
        let Ok(permit) = Arc::clone(&shared).try_acquire_owned() else {
            refused(&mut warn_refused, ip, "total", || {
                format!("{} connections are open, the most", limits.connections)
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let limits = limits.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            // Held until the connection ends.
            let _held = (permit, slot);
            match tls {
                None => serve_connection(stream, remote, router, &limits, shutdown).await,
                Some(gate) => {
                    let Some(handshake) = gate.admit(stream, remote) else {
                        return;
                    };
                    let stream = tokio::select! {
                        () = shutdown.cancelled() => return,
                        stream = handshake => stream,
                    };
                    if let Some(stream) = stream {
                        serve_connection(stream, remote, router, &limits, shutdown).await;
                    }
                }
            }
        });
        metrics::gauge!("frontdesk_http_connections").set(connections.len() as f64);
    }
    connections.close();
    connections.wait().await;
    info!("http stopped");
    Ok(())
}

/// Counts and logs a connection closed at once.
fn refused(warn: &mut WarnEvery, ip: IpAddr, reason: &'static str, why: impl Fn() -> String) {
    metrics::counter!("frontdesk_http_connections_refused_total", "reason" => reason).increment(1);
    debug!(%ip, "http connection closed at once: {}", why());
    if let Some(count) = warn.hit(std::time::Instant::now()) {
        warn!(
            %ip,
            refused = count,
            "http connection closed at once: {} ({count} refused since the last such warning)",
            why()
        );
    }
}

/// Serves one connection's requests until it closes, idles past
/// `idle_timeout`, or shutdown lets its request in flight finish.
async fn serve_connection<I>(
    io: I,
    remote: SocketAddr,
    router: Router,
    limits: &HttpLimits,
    shutdown: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let epoch = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = Watched {
        inner: io,
        epoch,
        activity: Arc::clone(&activity),
    };
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        router.clone().oneshot(request.map(Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_BUFFER)
        .keep_alive(true);
    // Upgrades: the browser phone's WebSocket (`/agent/phone`).
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        let last = epoch + Duration::from_millis(activity.load(Ordering::Relaxed));
        let idle_at = last + limits.idle_timeout;
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    debug!(%remote, %error, "http connection ended");
                }
                return;
            }
            () = tokio::time::sleep_until(idle_at) => {
                let moved = epoch + Duration::from_millis(activity.load(Ordering::Relaxed));
                if moved + limits.idle_timeout <= Instant::now() {
                    debug!(%remote, "http connection idle: closed");
                    return;
                }
            }
            () = shutdown.cancelled(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A stream that notes when bytes last moved, in milliseconds since
/// `epoch`, for the idle timeout.
struct Watched<I> {
    inner: I,
    epoch: Instant,
    activity: Arc<AtomicU64>,
}

impl<I> Watched<I> {
    fn touch(&self) {
        let elapsed = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(elapsed, Ordering::Relaxed);
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Reads a request's whole body, within `body_timeout` and the size cap,
/// before the handler runs; see the module docs.
async fn body_guard(State(limits): State<HttpLimits>, request: Request, next: Next) -> Response {
    let max = match request.uri().path() {
        "/agent/login" => limits.max_login_body,
        "/api/leads" if request.method() == axum::http::Method::POST => limits.max_lead_body,
        _ => limits.max_body,
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        return closing(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body may be {max} bytes at most"),
        ));
    }
    let (parts, body) = request.into_parts();
    let read = http_body_util::Limited::new(body, max).collect();
    let bytes = match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            return closing(error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body may be {max} bytes at most"),
            ));
        }
        Ok(Err(_)) => {
            return closing(error_response(
                StatusCode::BAD_REQUEST,
                "the body could not be read",
            ));
        }
        Err(_) => {
            return closing(error_response(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body must arrive within {} ms",
                    limits.body_timeout.as_millis()
                ),
            ));
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// `response` with `Connection: close`: what is left of the request on the
/// connection is never read.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}
