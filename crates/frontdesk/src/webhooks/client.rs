//! One delivery: a signed `POST` over HTTP/1.1, plain to a private
//! address or TLS (rustls, Mozilla's roots) anywhere, with the webhook's
//! `timeout` over the whole exchange. hyper's client connection does the
//! HTTP; this module connects, checks where it connected, keeps the
//! connections for the next deliveries, and says what happened.
//!
//! # Kept-alive connections
//! A connection whose exchange ended well (a complete answer, no
//! `Connection: close`) is kept for the next delivery to the same
//! scheme, host and port, at most [`MAX_IDLE`] of them each, for at most
//! [`IDLE_FOR`]. A thousand deliveries a second on fresh connections cost
//! a TCP handshake and teardown each, and to an `https://` CRM a TLS
//! handshake each: most of the delivery's CPU (BENCHMARKS.md, issue 26).
//! A kept connection the receiver has closed meanwhile fails before the
//! request is sent or without an answer; the delivery is then tried once
//! more on a fresh connection, so that a receiver's idle timeout is never
//! a failed delivery (and never pauses the webhook). Delivery stays at
//! least once: a receiver drops repeats by `X-Frontdesk-Delivery`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use ivr::webhooks::{WebhookUrl, is_private};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// Kept connections per scheme, host and port, at most: the most a
/// webhook may have in flight (`ivr::webhooks`' bound on `concurrency`).
pub const MAX_IDLE: usize = 256;
/// A kept connection unused this long is closed (below the usual
/// receivers' own idle timeouts, which would close it anyway).
pub const IDLE_FOR: Duration = Duration::from_secs(10);
/// An answer's body is read (to keep its connection) up to this size; a
/// larger one closes the connection.
const MAX_ANSWER_BODY: usize = 64 * 1024;

/// Why a delivery did not get a 2xx. Its `Display` is what the outbox
/// keeps and the log shows: never the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver answered, not 2xx.
    #[error("HTTP {0}")]
    Status(u16),
    /// No answer within the webhook's `timeout`.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The host name did not resolve, or not to an allowed address.
    #[error("{0}")]
    Address(String),
    /// Connecting, TLS or HTTP failed.
    #[error("{0}")]
    Transport(String),
}

/// Makes the connections and keeps them; one per daemon (the TLS set-up
/// and the kept connections are shared by its clones).
#[derive(Clone)]
pub struct Client {
    tls: TlsConnector,
    user_agent: &'static str,
    idle: Arc<Mutex<HashMap<String, Vec<Kept>>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("user_agent", &self.user_agent)
            .field("kept", &self.kept())
            .finish_non_exhaustive()
    }
}

/// A kept connection: the request side, its connection task and since
/// when it waits.
struct Kept {
    sender: SendRequest<Full<Bytes>>,
    task: AbortOnDrop,
    since: Instant,
}

/// A connection in use: closed (its task aborted) when dropped, unless
/// it went back to the pool.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    task: AbortOnDrop,
    /// Taken from the pool (the receiver may have closed it meanwhile).
    reused: bool,
}

/// Aborts a connection's task when dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One request's headers beyond the HTTP ones.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// `X-Frontdesk-Event`.
    pub kind: &'a str,
    /// `X-Frontdesk-Delivery`: the event's id.
    pub event_id: &'a str,
    /// `X-Frontdesk-Signature`.
    pub signature: &'a str,
    /// The JSON body.
    pub body: Bytes,
}

impl Client {
    /// A client with Mozilla's roots (`webpki-roots`) and rustls' ring
    /// provider, the one the rest of the daemon uses.
    pub fn new(user_agent: &'static str) -> Result<Client, rustls::Error> {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(Client {
            tls: TlsConnector::from(Arc::new(config)),
            user_agent,
            idle: Arc::default(),
        })
    }

    /// How many connections are kept now (all receivers).
    pub fn kept(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(Vec::len)
            .sum()
    }

    /// POSTs `delivery` to `url`; `Ok` with the 2xx status.
    pub async fn post(
        &self,
        url: &WebhookUrl,
        delivery: Delivery<'_>,
        timeout: Duration,
    ) -> Result<u16, DeliveryError> {
        match tokio::time::timeout(timeout, self.exchange(url, delivery)).await {
            Ok(result) => result,
            Err(_) => Err(DeliveryError::Timeout(timeout)),
        }
    }

    async fn exchange(
        &self,
        url: &WebhookUrl,
        delivery: Delivery<'_>,
    ) -> Result<u16, DeliveryError> {
        let request = || {
            Request::post(url.target())
                .header(hyper::header::HOST, url.authority())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header(hyper::header::USER_AGENT, self.user_agent)
                .header("x-frontdesk-event", delivery.kind)
                .header("x-frontdesk-delivery", delivery.event_id)
                .header("x-frontdesk-signature", delivery.signature)
                .body(Full::new(delivery.body.clone()))
                .map_err(|error| DeliveryError::Transport(format!("request: {error}")))
        };
        let key = pool_key(url);
        if let Some(connection) = self.take(&key) {
            match self.send(&key, connection, request()?).await {
                // A kept connection the receiver closed: once more on a
                // fresh one.
                Err(Failure::Stale) => {}
                Err(Failure::Delivery(error)) => return Err(error),
                Ok(status) => return Ok(status),
            }
        }
        let connection = self.connect(url).await?;
        match self.send(&key, connection, request()?).await {
            Ok(status) => Ok(status),
            Err(Failure::Delivery(error)) => Err(error),
            Err(Failure::Stale) => Err(DeliveryError::Transport(
                "http: the connection closed before the answer".into(),
            )),
        }
    }

    /// A kept connection to `key` that is still open, if any.
    fn take(&self, key: &str) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = idle.get_mut(key)?;
        let now = Instant::now();
        // Newest last: the likeliest to be open still. The others are
        // dropped: closed.
        while let Some(Kept {
            sender,
            task,
            since,
        }) = kept.pop()
        {
            if now.duration_since(since) < IDLE_FOR && !sender.is_closed() {
                return Some(Connection {
                    sender,
                    task,
                    reused: true,
                });
            }
        }
        idle.remove(key);
        None
    }

    /// Closes the kept connections unused for [`IDLE_FOR`] or closed by
    /// their receiver (also done whenever one comes back; the delivery
    /// service calls it each round, so that a webhook gone quiet does not
    /// keep its sockets).
    pub fn sweep(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        sweep(&mut idle, Instant::now());
    }

    /// Keeps `connection` for the next delivery to `key` (or closes it:
    /// the pool is full).
    fn keep(&self, key: &str, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        sweep(&mut idle, now);
        let kept = idle.entry(key.to_string()).or_default();
        if kept.len() < MAX_IDLE {
            kept.push(Kept {
                sender: connection.sender,
                task: connection.task,
                since: now,
            });
        }
    }

    /// A new connection to `url`, TLS when it says so, its HTTP/1.1
    /// connection driven by a task of its own on this runtime.
    async fn connect(&self, url: &WebhookUrl) -> Result<Connection, DeliveryError> {
        let address = resolve(url).await?;
        let stream = TcpStream::connect(address)
            .await
            .map_err(|error| DeliveryError::Transport(format!("connect: {error}")))?;
        let _ = stream.set_nodelay(true);
        if url.tls() {
            let name = rustls::pki_types::ServerName::try_from(url.host().to_string())
                .map_err(|error| DeliveryError::Address(format!("server name: {error}")))?;
            let stream = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|error| DeliveryError::Transport(format!("tls: {error}")))?;
            handshake(TokioIo::new(stream)).await
        } else {
            handshake(TokioIo::new(stream)).await
        }
    }

    /// Sends `request` on `connection` and reads the whole answer; keeps
    /// the connection when the exchange allows it.
    async fn send(
        &self,
        key: &str,
        mut connection: Connection,
        request: Request<Full<Bytes>>,
    ) -> Result<u16, Failure> {
        let reused = connection.reused;
        // A reused connection that fails before an answer began is stale
        // (the receiver closed it while it waited): tried again fresh.
        let stale = |error: String| {
            if reused {
                Failure::Stale
            } else {
                Failure::Delivery(DeliveryError::Transport(format!("http: {error}")))
            }
        };
        if connection.sender.ready().await.is_err() {
            return Err(stale("the connection closed".into()));
        }
        let response = match connection.sender.try_send_request(request).await {
            Ok(response) => response,
            Err(error) => {
                let message = error.error().to_string();
                return Err(stale(message));
            }
        };
        let status = response.status();
        let keep_alive = !response
            .headers()
            .get_all(hyper::header::CONNECTION)
            .iter()
            .any(|value| {
                value.to_str().is_ok_and(|value| {
                    value
                        .split(',')
                        .any(|token| token.trim().eq_ignore_ascii_case("close"))
                })
            });
        // The answer's body is read to its end (bounded), so that the
        // connection can carry the next request.
        let body_read = Limited::new(response.into_body(), MAX_ANSWER_BODY)
            .collect()
            .await
            .is_ok();
        if keep_alive && body_read {
            self.keep(key, connection);
        }
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(Failure::Delivery(DeliveryError::Status(status.as_u16())))
        }
    }
}

/// Drops (closes) the kept connections expired at `now` or closed.
fn sweep(idle: &mut HashMap<String, Vec<Kept>>, now: Instant) {
    for kept in idle.values_mut() {
        kept.retain(|kept| now.duration_since(kept.since) < IDLE_FOR && !kept.sender.is_closed());
    }
    idle.retain(|_, kept| !kept.is_empty());
}

/// Why [`Client::send`] did not get an answer.
enum Failure {
    /// A kept connection turned out closed before answering.
    Stale,
    /// Anything else: the delivery's result.
    Delivery(DeliveryError),
}

/// Kept connections are shared by scheme, host and port.
fn pool_key(url: &WebhookUrl) -> String {
    format!(
        "{}://{}:{}",
        if url.tls() { "https" } else { "http" },
        url.host(),
        url.port()
    )
}

/// HTTP/1.1 on `io`: the request side, and the connection's task spawned
/// on the current runtime (aborted when the [`Connection`] is dropped).
async fn handshake<I>(io: I) -> Result<Connection, DeliveryError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|error| DeliveryError::Transport(format!("http: {error}")))?;
    let task = AbortOnDrop(
        tokio::spawn(async move {
            // Its error is the request's: [`Client::send`] reports it.
            let _ = connection.await;
        })
        .abort_handle(),
    );
    Ok(Connection {
        sender,
        task,
        reused: false,
    })
}

/// The address to connect to: the first the name resolves to, and for
/// `http://` only a private one (`ivr::webhooks`' rule, checked again
/// here since `localhost` is a name).
async fn resolve(url: &WebhookUrl) -> Result<SocketAddr, DeliveryError> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((url.host(), url.port()))
        .await
        .map_err(|error| DeliveryError::Address(format!("resolve: {error}")))?
        .collect();
    let allowed = addresses
        .into_iter()
        .find(|address| url.tls() || is_private(address.ip()));
    allowed.ok_or_else(|| {
        DeliveryError::Address(if url.tls() {
            "the host name resolves to no address".into()
        } else {
            "http:// only to a private address: the host resolves to none".into()
        })
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// How the test receiver ends each exchange.
    #[derive(Clone, Copy)]
    enum Ending {
        /// Keeps the connection for more requests.
        KeepAlive,
        /// Answers with `Connection: close` and closes.
        Close,
        /// Answers as if it kept the connection, then closes it without
        /// an answer when the next request comes (a receiver's idle
        /// timeout meeting the next delivery).
        CloseOnNext,
    }

    /// A receiver on 127.0.0.1 answering 200 to every request: its URL
    /// and how many connections it accepted.
    async fn receiver(ending: Ending) -> (WebhookUrl, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let mut answered = false;
                    loop {
                        // One request: its head, then Content-Length bytes.
                        let (head_end, length) = loop {
                            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head = String::from_utf8_lossy(&buffer[..at]).to_lowercase();
                                let length = head
                                    .lines()
                                    .find_map(|line| line.strip_prefix("content-length:"))
                                    .and_then(|value| value.trim().parse::<usize>().ok())
                                    .unwrap_or(0);
                                break (at + 4, length);
                            }
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        };
                        while buffer.len() < head_end + length {
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buffer.drain(..head_end + length);
                        if answered && matches!(ending, Ending::CloseOnNext) {
                            return;
                        }
                        answered = true;
                        let answer: &[u8] = match ending {
                            Ending::Close => {
                                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                            }
                            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                        };
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                        if matches!(ending, Ending::Close) {
                            return;
                        }
                    }
                });
            }
        });
        let url = WebhookUrl::parse(&format!("http://127.0.0.1:{port}/crm")).expect("a URL");
        (url, accepted)
    }

    async fn deliver(client: &Client, url: &WebhookUrl, n: usize) -> Result<u16, DeliveryError> {
        let id = format!("e-{n}");
        client
            .post(
                url,
                Delivery {
                    kind: "lead.created",
                    event_id: &id,
                    signature: "t=1,v1=00",
                    body: Bytes::from_static(b"{}"),
                },
                Duration::from_secs(5),
            )
            .await
    }

    #[tokio::test]
    async fn deliveries_share_a_kept_connection() {
        let (url, accepted) = receiver(Ending::KeepAlive).await;
        let client = Client::new("test").expect("a client");
        for n in 0..5 {
            assert_eq!(deliver(&client, &url, n).await, Ok(200));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(client.kept(), 1);
    }

    #[tokio::test]
    async fn a_kept_connection_unused_for_its_idle_time_is_closed() {
        let (url, _) = receiver(Ending::KeepAlive).await;
        let client = Client::new("test").expect("a client");
        assert_eq!(deliver(&client, &url, 0).await, Ok(200));
        client.sweep();
        assert_eq!(client.kept(), 1, "still fresh");
        let later = Instant::now() + IDLE_FOR;
        sweep(&mut client.idle.lock().expect("the pool"), later);
        assert_eq!(client.kept(), 0);
    }

    #[tokio::test]
    async fn a_receiver_that_says_close_gets_a_connection_per_delivery() {
        let (url, accepted) = receiver(Ending::Close).await;
        let client = Client::new("test").expect("a client");
        for n in 0..3 {
            assert_eq!(deliver(&client, &url, n).await, Ok(200));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert_eq!(client.kept(), 0);
    }

    #[tokio::test]
    async fn a_kept_connection_the_receiver_closed_is_not_a_failed_delivery() {
        let (url, accepted) = receiver(Ending::CloseOnNext).await;
        let client = Client::new("test").expect("a client");
        // Each delivery after the first is sent on the kept connection,
        // which the receiver closes without an answer: it is delivered on
        // a fresh one, not failed.
        for n in 0..4 {
            assert_eq!(deliver(&client, &url, n).await, Ok(200));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }
}
