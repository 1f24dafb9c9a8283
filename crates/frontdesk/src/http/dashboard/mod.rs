//! The live dashboard at `/` (DESIGN.md, "Admin HTTP API"): a plain
//! HTML/CSS/JS page embedded in the binary, and `GET /api/events`, the
//! server-sent events that keep it current.
//!
//! ## Data
//!
//! One task ([`publish`]) owns the picture: once a second it samples the
//! callers waiting into the chart's [`WaitingSeries`] (always, so the chart
//! has the last hour even when nobody was looking) and, while someone
//! watches, builds a [`Snapshot`] from the same functions the JSON API
//! answers with and publishes it on a `watch` channel. Every viewer gets
//! the same `Arc`'d document; a new viewer wakes the task so that its first
//! picture is fresh.
//!
//! ## Authentication of the event stream
//!
//! `GET /api/events` sits under `/api` like every other admin route and
//! takes the same `Authorization: Bearer <admin token>` header: no
//! exception, no token in a URL (where logs, history and `Referer` would
//! keep it). The page cannot use `EventSource` (which cannot set headers),
//! so it reads the `text/event-stream` with `fetch` and a stream reader
//! (`assets/common.js`), reconnecting with a back-off. The admin token
//! reaches the page typed in, or once from `/?token=…` (as the demo prints
//! it), which the page moves into `sessionStorage` and strips from the
//! address bar at once.
//!
//! Streams end when the daemon shuts down, so that the HTTP server's
//! graceful shutdown is not held up by open dashboards.

pub(crate) mod assets;
pub mod series;
pub mod snapshot;

use std::convert::Infallible;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use ivr::jiff::Timestamp;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

pub use assets::{agent_page, asset, dashboard_page};
pub use series::WaitingSeries;
pub use snapshot::Snapshot;

use super::AppState;
use crate::app::App;

/// How often the picture is rebuilt while watched, and the chart sampled.
pub const EVERY: Duration = Duration::from_secs(1);
/// A snapshot younger than this is sent at once to a new viewer.
const FRESH: Duration = Duration::from_secs(2);
/// Comment lines on an idle stream, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The dashboard's shared handle: the latest snapshot and a way to ask
/// for a fresh one. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    snapshots: watch::Sender<Option<Arc<Snapshot>>>,
    wake: Notify,
    stop: CancellationToken,
}

impl Live {
    /// A handle whose streams all end when `stop` is cancelled (the
    /// daemon's shutdown).
    pub fn new(stop: CancellationToken) -> Self {
        let (snapshots, _) = watch::channel(None);
        Live {
            inner: Arc::new(Inner {
                snapshots,
                wake: Notify::new(),
                stop,
            }),
        }
    }

    /// A viewer's receiver: it sees the latest snapshot at once when that
    /// is fresh, and the publisher is woken to build a new one.
    fn subscribe(&self) -> watch::Receiver<Option<Arc<Snapshot>>> {
        let mut receiver = self.inner.snapshots.subscribe();
        let fresh = receiver.borrow().as_ref().is_some_and(|snapshot| {
            let age_ms = Timestamp::now().as_millisecond() - snapshot.generated_at.as_millisecond();
            u128::try_from(age_ms).is_ok_and(|age| age < FRESH.as_millis())
        });
        if fresh {
            receiver.mark_changed();
        }
        self.inner.wake.notify_one();
        receiver
    }

    /// A viewer's receiver of snapshots and the token that ends its
    /// stream, for a stream that merges snapshots with something else (the
    /// agent's leads).
    pub(crate) fn viewer(&self) -> (watch::Receiver<Option<Arc<Snapshot>>>, CancellationToken) {
        (self.subscribe(), self.inner.stop.clone())
    }

    fn watched(&self) -> bool {
        self.inner.snapshots.receiver_count() > 0
    }

    /// Server-sent events: `render` turns each new snapshot into an event
    /// to send (`Continue`), or into a last one after which the stream
    /// ends (`Break`). The stream also ends at shutdown.
    pub fn events<F>(
        &self,
        render: F,
    ) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<F>>
    where
        F: FnMut(&Snapshot) -> ControlFlow<Event, Event> + Send + 'static,
    {
        struct Viewer<F> {
            receiver: watch::Receiver<Option<Arc<Snapshot>>>,
            stop: CancellationToken,
            render: F,
            ended: bool,
        }
        let viewer = Viewer {
            receiver: self.subscribe(),
            stop: self.inner.stop.clone(),
            render,
            ended: false,
        };
        let stream = futures_util::stream::unfold(viewer, |mut viewer| async move {
            if viewer.ended {
                return None;
            }
            loop {
                tokio::select! {
                    () = viewer.stop.cancelled() => return None,
                    changed = viewer.receiver.changed() => changed.ok()?,
                }
                let snapshot = viewer.receiver.borrow_and_update().clone();
                let Some(snapshot) = snapshot else { continue };
                let event = match (viewer.render)(&snapshot) {
                    ControlFlow::Continue(event) => event,
                    ControlFlow::Break(event) => {
                        viewer.ended = true;
                        event
                    }
                };
                return Some((Ok(event), viewer));
            }
        });
        Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
    }
}

/// The dashboard's task: samples the chart every [`EVERY`] and, while
/// someone watches, publishes a fresh [`Snapshot`]; runs until the
/// handle's stop token is cancelled.
pub async fn publish(app: Arc<App>, leads: crate::leads::Leads, live: Live) -> anyhow::Result<()> {
    let mut series = WaitingSeries::default();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = live.inner.stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
            () = live.inner.wake.notified() => {}
        }
        let stats = app.router.stats().await.ok();
        if let Some(stats) = &stats {
            let waiting: usize = stats.iter().map(|queue| queue.waiting).sum();
            series.record(Timestamp::now(), u32::try_from(waiting).unwrap_or(u32::MAX));
        }
        if live.watched() {
            let snapshot = snapshot::build(&app, &leads, stats.as_deref(), &series).await;
            live.inner.snapshots.send_replace(Some(Arc::new(snapshot)));
        }
    }
}

/// `GET /api/events` (admin token): a `snapshot` event with the
/// dashboard's document (see [`snapshot`]) every second.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "calls",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "`snapshot` events, one a second: the dashboard's document", content_type = "text/event-stream", body = String),
        (status = 401, description = "No or a wrong admin token", body = crate::http::openapi::ApiError)
    )
)]
pub async fn events(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    state.dashboard.events(|snapshot| {
        ControlFlow::Continue(Event::default().event("snapshot").data(&*snapshot.document))
    })
}
