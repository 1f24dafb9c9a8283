//! Pass 3a, continued: `[[webhooks]]` (see `crate::webhooks` for the URL
//! rule and the defaults).

use std::collections::BTreeMap;

use domain::WebhookEvent;

use super::Builder;
use crate::compile::RawPlan;
use crate::diagnostic::ErrorKind;
use crate::leads::SourceSecret;
use crate::webhooks::{MIN_SECRET, Webhook, WebhookUrl};

/// The most `[[webhooks]]` entries.
const MAX_WEBHOOKS: usize = 16;

impl Builder<'_, '_> {
    /// `[[webhooks]]`, in file order.
    pub(super) fn webhooks(&mut self, raw: &RawPlan) -> Vec<Webhook> {
        let mut webhooks = Vec::new();
        // name → where it was first used.
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        if raw.webhooks.len() > MAX_WEBHOOKS
            && let Some(extra) = raw.webhooks.get(MAX_WEBHOOKS)
        {
            self.error(
                ErrorKind::InvalidValue,
                extra.span(),
                format!("at most {MAX_WEBHOOKS} `[[webhooks]]`"),
            );
        }
        for spanned in &raw.webhooks {
            let hook = spanned.get_ref();
            let mut ok = true;
            let url = match WebhookUrl::parse(hook.url.get_ref()) {
                Ok(url) => Some(url),
                Err(message) => {
                    self.error(
                        ErrorKind::InvalidValue,
                        hook.url.span(),
                        format!("`url`: {message}"),
                    );
                    None
                }
            };
            if hook.secret.get_ref().len() < MIN_SECRET {
                self.error(
                    ErrorKind::InvalidValue,
                    hook.secret.span(),
                    format!(
                        "`secret` must be at least {MIN_SECRET} bytes: a short HMAC key can be guessed from one signed delivery"
                    ),
                );
                ok = false;
            }
            let mut events = Vec::new();
            for name in hook.events.get_ref() {
                match name.get_ref().parse::<WebhookEvent>() {
                    Ok(kind) if events.contains(&kind) => {
                        self.error(
                            ErrorKind::InvalidValue,
                            name.span(),
                            format!("`events`: `{kind}` is listed twice"),
                        );
                        ok = false;
                    }
                    Ok(kind) => events.push(kind),
                    Err(error) => {
                        self.error(
                            ErrorKind::InvalidValue,
                            name.span(),
                            format!("`events`: {error}"),
                        );
                        ok = false;
                    }
                }
            }
            if hook.events.get_ref().is_empty() {
                self.error(
                    ErrorKind::InvalidValue,
                    hook.events.span(),
                    "`events` cannot be empty: name the kinds this webhook hears",
                );
                ok = false;
            }
            let timeout = self.optional_positive(&hook.timeout, "timeout", Webhook::TIMEOUT);
            let retry_initial = self.optional_positive(
                &hook.retry_initial,
                "retry_initial",
                Webhook::RETRY_INITIAL,
            );
            let retry_max =
                self.optional_positive(&hook.retry_max, "retry_max", Webhook::RETRY_MAX);
            if let (Some(initial), Some(max), Some(value)) =
                (retry_initial, retry_max, &hook.retry_max)
                && max < initial
            {
                self.error(
                    ErrorKind::InvalidValue,
                    value.span(),
                    "`retry_max` must be at least `retry_initial`",
                );
                ok = false;
            }
            let max_pending = match &hook.max_pending {
                None => Some(Webhook::MAX_PENDING),
                Some(value) => self
                    .int_in(value, 1, 10_000_000, "max_pending")
                    .map(|n| n as u64),
            };
            let concurrency = match &hook.concurrency {
                None => Some(Webhook::CONCURRENCY),
                Some(value) => self.int_in(value, 1, 256, "concurrency").map(|n| n as u32),
            };
            let name = match (&hook.name, &url) {
                (Some(name), _) => {
                    let text = name.get_ref();
                    if text.is_empty()
                        || text.len() > 64
                        || !text
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
                    {
                        self.error(
                            ErrorKind::InvalidValue,
                            name.span(),
                            "`name` is 1 to 64 of `A-Z`, `a-z`, `0-9`, `-`, `_`, `.`, `:` (it labels the metrics)",
                        );
                        ok = false;
                    }
                    Some(text.clone())
                }
                (None, Some(url)) => Some(format!("{}:{}", url.host(), url.port())),
                (None, None) => None,
            };
            if let Some(name) = &name {
                let line = self.sink.line_of(spanned.span().start);
                if let Some(first) = names.insert(name.clone(), line) {
                    self.error(
                        ErrorKind::InvalidValue,
                        spanned.span(),
                        format!(
                            "webhook `{name}` is also the name of the webhook on line {first}: give each a distinct `name`"
                        ),
                    );
                    ok = false;
                }
            }
            let (
                Some(name),
                Some(url),
                Some(timeout),
                Some(retry_initial),
                Some(retry_max),
                Some(max_pending),
                Some(concurrency),
                true,
            ) = (
                name,
                url,
                timeout,
                retry_initial,
                retry_max,
                max_pending,
                concurrency,
                ok,
            )
            else {
                continue;
            };
            webhooks.push(Webhook {
                name,
                url,
                secret: SourceSecret::new(hook.secret.get_ref().clone()),
                events,
                timeout,
                retry_initial,
                retry_max,
                max_pending,
                concurrency,
            });
        }
        webhooks
    }
}
