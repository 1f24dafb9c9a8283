//! The pages and their scripts and style, compiled into the binary
//! (`src/http/assets/`): plain HTML, CSS and JavaScript, no build step,
//! nothing loaded from elsewhere.
//!
//! Every answer forbids what the pages do not need: scripts and styles
//! from this origin only (no inline script, so data rendered into the page
//! can never run), no framing, no referrer (the first load of `/` may
//! carry the admin token in its query), no caching of a stale page.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::error_response;

/// The dashboard.
const INDEX_HTML: &str = include_str!("../assets/index.html");
/// The agent's own view.
const AGENT_HTML: &str = include_str!("../assets/agent.html");
/// The files under `/assets/`: name, content type, content.
const FILES: &[(&str, &str, &str)] = &[
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/common.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/dashboard.js"),
    ),
    (
        "agent.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/agent.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
];

/// The Content-Security-Policy of every page and file. `media-src blob:`:
/// the agent page plays a voicemail it fetched with its session as a Blob.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; media-src blob:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

fn with_headers(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 6] = [
        (CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ),
        (
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ),
        (
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ),
    ];
    (headers, body).into_response()
}

/// `GET /`: the dashboard page (it asks for the admin token itself).
#[utoipa::path(
    get,
    path = "/",
    tag = "pages",
    responses(
        (status = 200, description = "The dashboard", content_type = "text/html", body = String)
    )
)]
pub async fn dashboard_page() -> Response {
    with_headers("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /agent`: the agent's page (it signs in itself).
#[utoipa::path(
    get,
    path = "/agent",
    tag = "pages",
    responses(
        (status = 200, description = "The agent view", content_type = "text/html", body = String)
    )
)]
pub async fn agent_page() -> Response {
    with_headers("text/html; charset=utf-8", AGENT_HTML)
}

/// `GET /assets/{name}`.
#[utoipa::path(
    get,
    path = "/assets/{name}",
    tag = "pages",
    params(("name" = String, Path, description = "The file's name")),
    responses(
        (status = 200, description = "A script, a style sheet or an image of the pages", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such asset", body = crate::http::openapi::ApiError)
    )
)]
pub async fn asset(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => with_headers(content_type, body),
        None => error_response(StatusCode::NOT_FOUND, "not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_load_only_their_own_files() {
        for page in [INDEX_HTML, AGENT_HTML] {
            assert!(!page.contains("http://") && !page.contains("https://"));
            assert!(!page.contains("<script>"), "no inline script");
            assert!(!page.contains("style=\""), "no inline style");
            for (source, _) in page.match_indices("src=\"") {
                let rest = &page[source + 5..];
                let path = &rest[..rest.find('"').unwrap()];
                let name = path.strip_prefix("/assets/").expect("under /assets/");
                assert!(FILES.iter().any(|(file, _, _)| *file == name), "{path}");
            }
        }
    }
}
