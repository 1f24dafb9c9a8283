//! One delivery: a signed `POST` over HTTP/1.1, on a fresh connection,
//! plain to a private address or TLS (rustls, Mozilla's roots) anywhere,
//! with the webhook's `timeout` over the whole exchange. hyper's client
//! connection does the HTTP; this module only connects, checks where it
//! connected, and says what happened.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper_util::rt::TokioIo;
use ivr::webhooks::{WebhookUrl, is_private};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

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

/// Makes the connections; one per daemon (the TLS set-up is shared).
#[derive(Clone)]
pub struct Client {
    tls: TlsConnector,
    user_agent: &'static str,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
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
        })
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
        let address = resolve(url).await?;
        let stream = TcpStream::connect(address)
            .await
            .map_err(|error| DeliveryError::Transport(format!("connect: {error}")))?;
        let _ = stream.set_nodelay(true);
        let request = Request::post(url.target())
            .header(hyper::header::HOST, url.authority())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, self.user_agent)
            .header(hyper::header::CONNECTION, "close")
            .header("x-frontdesk-event", delivery.kind)
            .header("x-frontdesk-delivery", delivery.event_id)
            .header("x-frontdesk-signature", delivery.signature)
            .body(Full::new(delivery.body))
            .map_err(|error| DeliveryError::Transport(format!("request: {error}")))?;
        if url.tls() {
            let name = rustls::pki_types::ServerName::try_from(url.host().to_string())
                .map_err(|error| DeliveryError::Address(format!("server name: {error}")))?;
            let stream = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|error| DeliveryError::Transport(format!("tls: {error}")))?;
            send(TokioIo::new(stream), request).await
        } else {
            send(TokioIo::new(stream), request).await
        }
    }
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

async fn send<I>(io: I, request: Request<Full<Bytes>>) -> Result<u16, DeliveryError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|error| DeliveryError::Transport(format!("http: {error}")))?;
    // The connection is driven here, not in a task of its own, so that
    // the timeout's drop ends it too.
    let response = sender.send_request(request);
    tokio::pin!(response);
    tokio::pin!(connection);
    let response = tokio::select! {
        biased;
        response = &mut response => response,
        _ = &mut connection => response.await,
    }
    .map_err(|error| DeliveryError::Transport(format!("http: {error}")))?;
    let status = response.status().as_u16();
    if response.status().is_success() {
        Ok(status)
    } else {
        Err(DeliveryError::Status(status))
    }
}
