//! `[[webhooks]]`: the clinic's CRM or EHR endpoints that hear every lead
//! and call event (issue 26), with the secret their deliveries are signed
//! with and how patiently they are retried.
//!
//! # Where a webhook may point
//! Events carry patient data (names, numbers, what a patient wrote), so a
//! delivery must not cross a network in clear: `https://` anywhere, or
//! `http://` only to an address that cannot leave the clinic's network —
//! an IP literal that is loopback (`127.0.0.0/8`, `::1`), private
//! (RFC 1918: `10/8`, `172.16/12`, `192.168/16`; RFC 4193: `fc00::/7`),
//! or the name `localhost`. An `http://` URL naming any other host is
//! refused by `check`: a DNS name could resolve anywhere. The daemon
//! checks the connected address again before it sends (`localhost`
//! must resolve to loopback).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use domain::WebhookEvent;

use crate::leads::SourceSecret;

/// The shortest secret `check` accepts, as for a source's.
pub const MIN_SECRET: usize = crate::leads::source::MIN_SECRET;
/// The longest URL `check` accepts.
pub const MAX_URL: usize = 2048;

/// A checked webhook URL: `http(s)://host[:port]/path?query`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    text: String,
    tls: bool,
    host: String,
    port: u16,
    /// Path and query, starting with `/`.
    target: String,
}

impl WebhookUrl {
    /// Parses and applies the rule in the module docs.
    pub fn parse(text: &str) -> Result<WebhookUrl, String> {
        if text.len() > MAX_URL {
            return Err(format!("longer than {MAX_URL} bytes"));
        }
        if text.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err("contains a space or a control character".into());
        }
        let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err("must start with `https://` (or `http://` to a private address)".into());
        };
        if rest.contains('#') {
            return Err("a fragment (`#…`) is never sent: remove it".into());
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        let target = match target.chars().next() {
            None => "/".to_string(),
            Some('?') => format!("/{target}"),
            Some(_) => target.to_string(),
        };
        if authority.contains('@') {
            return Err("credentials in the URL are not allowed: use `secret`".into());
        }
        let (host, port) = split_host_port(authority)?;
        let port = port.unwrap_or(if tls { 443 } else { 80 });
        if host.is_empty() {
            return Err("has no host".into());
        }
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_none() && !is_host_name(host) {
            return Err(format!("`{host}` is not a host name or an IP address"));
        }
        if !tls && !ip.is_some_and(is_private) && !host.eq_ignore_ascii_case("localhost") {
            return Err(format!(
                "`http://` is allowed only to a loopback or private IP address (or `localhost`); \
                 events carry patient data: use `https://` for `{host}`"
            ));
        }
        Ok(WebhookUrl {
            text: text.to_string(),
            tls,
            host: host.to_ascii_lowercase(),
            port,
            target,
        })
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `https://`.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The host: a name, or an IP address without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (443 or 80 when not written).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target: path and query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The `Host` header's value.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.tls, self.port) {
            (true, 443) | (false, 80) => host,
            _ => format!("{host}:{}", self.port),
        }
    }
}

impl fmt::Debug for WebhookUrl {
    /// The scheme, host and port only: a path may hold a token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "WebhookUrl({scheme}://{}/…)", self.authority())
    }
}

/// Whether an address may receive `http://` deliveries: loopback or
/// private (module docs).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_private())
        }
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "an IPv6 address must be closed by `]`".to_string())?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`[{host}]` is not an IPv6 address"));
        }
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err("unexpected text after `]`".into()),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(port) => match port.parse::<u16>() {
            Ok(number) if number > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Some(number),
            _ => return Err(format!("`{port}` is not a port (1 to 65535)")),
        },
    };
    Ok((host, port))
}

fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// One `[[webhooks]]` entry, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub(crate) name: String,
    pub(crate) url: WebhookUrl,
    pub(crate) secret: SourceSecret,
    pub(crate) events: Vec<WebhookEvent>,
    pub(crate) timeout: Duration,
    pub(crate) retry_initial: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) max_pending: u64,
    pub(crate) concurrency: u32,
}

impl Webhook {
    /// Default `timeout`: one delivery's whole exchange.
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    /// Default `retry_initial`: the first retry's delay.
    pub const RETRY_INITIAL: Duration = Duration::from_secs(1);
    /// Default `retry_max`: the longest delay between two tries.
    pub const RETRY_MAX: Duration = Duration::from_secs(10 * 60);
    /// Default `max_pending`: undelivered events kept for one webhook.
    pub const MAX_PENDING: u64 = 100_000;
    /// Default `concurrency`: deliveries in flight at once.
    pub const CONCURRENCY: u32 = 4;

    /// A webhook (the checker makes them; tests too), with the defaults.
    pub fn new(
        name: impl Into<String>,
        url: WebhookUrl,
        secret: SourceSecret,
        events: Vec<WebhookEvent>,
    ) -> Self {
        Webhook {
            name: name.into(),
            url,
            secret,
            events,
            timeout: Self::TIMEOUT,
            retry_initial: Self::RETRY_INITIAL,
            retry_max: Self::RETRY_MAX,
            max_pending: Self::MAX_PENDING,
            concurrency: Self::CONCURRENCY,
        }
    }

    /// Its name: `name`, or the URL's host and port. The metrics' label and
    /// the key of its undelivered events in the journal.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where events go.
    pub fn url(&self) -> &WebhookUrl {
        &self.url
    }

    /// The key deliveries are signed with.
    pub fn secret(&self) -> &SourceSecret {
        &self.secret
    }

    /// The kinds it hears.
    pub fn events(&self) -> &[WebhookEvent] {
        &self.events
    }

    /// Whether it hears `kind`.
    pub fn hears(&self, kind: WebhookEvent) -> bool {
        self.events.contains(&kind)
    }

    /// One delivery's limit: connect, send, answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The delay before the first retry; each next one doubles, up to
    /// [`Webhook::retry_max`], with jitter.
    pub fn retry_initial(&self) -> Duration {
        self.retry_initial
    }

    /// The longest delay between two tries.
    pub fn retry_max(&self) -> Duration {
        self.retry_max
    }

    /// Undelivered events kept at most; past it new events for this
    /// webhook are dropped (counted, alerted).
    pub fn max_pending(&self) -> u64 {
        self.max_pending
    }

    /// Deliveries in flight at once.
    pub fn concurrency(&self) -> u32 {
        self.concurrency
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn https_anywhere_http_only_to_private_addresses() {
        let url = WebhookUrl::parse("https://crm.example.com/hooks/frontdesk?x=1").unwrap();
        assert!(url.tls());
        assert_eq!(url.host(), "crm.example.com");
        assert_eq!(url.port(), 443);
        assert_eq!(url.target(), "/hooks/frontdesk?x=1");
        assert_eq!(url.authority(), "crm.example.com");
        for ok in [
            "http://127.0.0.1:8080/in",
            "http://10.1.2.3/in",
            "http://192.168.1.10:81",
            "http://172.16.0.9/x",
            "http://[::1]:9000/x",
            "http://[fd00::1]/x",
            "http://localhost:3000/x",
        ] {
            assert!(WebhookUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://crm.example.com/in",
            "http://8.8.8.8/in",
            "http://172.32.0.1/in",
            "ftp://10.0.0.1/x",
            "https://user:pw@crm.example.com/x",
            "https://crm.example.com:0/x",
            "https://crm.example.com:99999/x",
            "https://crm.example.com/x#frag",
            "https:///x",
            "https://bad_host/x",
            "https://[::1/x",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
        let v6 = WebhookUrl::parse("http://[::1]:9000/x").unwrap();
        assert_eq!(v6.host(), "::1");
        assert_eq!(v6.authority(), "[::1]:9000");
        assert_eq!(
            WebhookUrl::parse("https://h.example/?q").unwrap().target(),
            "/?q"
        );
        assert_eq!(
            format!(
                "{:?}",
                WebhookUrl::parse("https://h.example/token").unwrap()
            ),
            "WebhookUrl(https://h.example/…)"
        );
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panicking(text in ".{0,80}") {
            let _ = WebhookUrl::parse(&text);
        }

        #[test]
        fn an_accepted_url_keeps_a_target_that_starts_with_a_slash(
            host in "[a-z]{1,10}(\\.[a-z]{1,10}){0,2}",
            port in proptest::option::of(1u16..),
            path in "(/[a-z0-9]{0,8}){0,3}(\\?[a-z=&]{0,10})?",
        ) {
            let port_text = port.map(|p| format!(":{p}")).unwrap_or_default();
            let url = WebhookUrl::parse(&format!("https://{host}{port_text}{path}")).unwrap();
            prop_assert!(url.target().starts_with('/'));
            prop_assert_eq!(url.port(), port.unwrap_or(443));
            prop_assert_eq!(url.host(), host.as_str());
        }
    }
}
