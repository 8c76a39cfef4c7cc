//! The console's one asset, compiled into the binary: its stylesheet (light and dark, following
//! the system's scheme).

use axum::http::header;
use axum::response::IntoResponse;

/// The stylesheet.
pub const CSS: &str = include_str!("console.css");

/// `GET /ui/assets/console.css`.
pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
}
