//! Writing HTML by hand, safely: [`Esc`] for every text and attribute value, [`url`] for
//! every piece of a URL, one page layout, and the security headers every answer carries.

use super::sessions::Session;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use std::fmt::{self, Display, Write};

/// The console's Content-Security-Policy: nothing but its own stylesheet, data: images, and
/// forms posting to itself; no script at all, no framing.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Text escaped for HTML content and for quoted attribute values.
pub struct Esc<'a>(pub &'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

// URL encoding is the API's (its `Link` headers and the console's links agree).
pub use crate::serve::api::link::{query, url};

/// The console's sections, for the navigation bar.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Services,
    Carriers,
    Resources,
    Changes,
    Status,
    None,
}

/// A whole page: the layout around `body` (already HTML), with a status code.
pub fn page(
    status: StatusCode,
    title: &str,
    nav: Nav,
    session: Option<&Session>,
    body: &str,
) -> Response {
    let mut html = String::with_capacity(body.len() + 2048);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{} · ses-inventory</title>\
         <link rel=\"stylesheet\" href=\"/ui/assets/console.css\">\
         <link rel=\"icon\" href=\"data:,\"></head>\n<body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><nav aria-label=\"Console\"><span class=\"brand\">ses-inventory</span><ul>",
        Esc(title)
    );
    if session.is_some() {
        for (item, href, label) in [
            (Nav::Overview, "/", "Overview"),
            (Nav::Services, "/ui/services", "Services"),
            (Nav::Carriers, "/ui/carriers", "Carriers"),
            (Nav::Resources, "/ui/resources", "Resources"),
            (Nav::Changes, "/ui/changes", "Changes"),
            (Nav::Status, "/ui/status", "Status"),
        ] {
            let current = if item == nav {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(html, "<li><a href=\"{href}\"{current}>{label}</a></li>");
        }
    }
    html.push_str("</ul>");
    if let Some(s) = session.filter(|s| s.signed_in) {
        let _ = write!(
            html,
            "<form method=\"post\" action=\"/ui/signout\" class=\"signout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Sign out</button></form>",
            Esc(&s.csrf)
        );
    }
    let _ = write!(
        html,
        "</nav></header>\n<main id=\"main\"><h1>{}</h1>\n{body}</main>\n\
         <footer>ses-inventory {} · read-only console · <a href=\"/api/v1/status\">status JSON</a> · \
         <a href=\"/api/v1/openapi.json\">OpenAPI</a>\
         </footer></body></html>\n",
        Esc(title),
        env!("CARGO_PKG_VERSION"),
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// An error page: the message (escaped) and a way back.
pub(crate) fn error_page(status: StatusCode, session: Option<&Session>, message: &str) -> Response {
    let body = format!(
        "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"/\">Back to the overview</a></p>",
        Esc(message)
    );
    let title = status.canonical_reason().unwrap_or("Error");
    page(status, title, Nav::None, session, &body)
}

/// Adds the security headers to every console answer.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not `no-referrer`: with it, browsers send `Origin: null` on the console's own form
        // posts, which the same-origin check must refuse. Nothing leaves for other sites.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A time for people, in a `<time>` element whose `datetime` is exact: `2026-11-27 20:41:03 UTC
/// (5 min ago)`; `—` for none.
pub fn time(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(t) = t else {
        return "<span class=\"muted\">—</span>".into();
    };
    let delta = now - t;
    let relative = if delta >= TimeDelta::zero() {
        format!("{} ago", span(delta))
    } else {
        format!("in {}", span(-delta))
    };
    format!(
        "<time datetime=\"{}\">{}</time> <span class=\"muted\">({relative})</span>",
        crate::time::format::millis(t),
        t.format("%Y-%m-%d %H:%M:%S UTC"),
    )
}

/// A coarse span: `12 s`, `5 min`, `3 h`, `2 d`.
fn span(d: TimeDelta) -> String {
    let s = d.num_seconds();
    if s < 120 {
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else if s < 172_800 {
        format!("{} h", s / 3600)
    } else {
        format!("{} d", s / 86_400)
    }
}

/// A poll's duration: `850 ms`, `12.3 s`, `4 min 5 s`.
pub fn duration(d: TimeDelta) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000)
    }
}

/// A count with thin separators: `12 345`.
pub fn count(n: impl Into<u64>) -> String {
    let digits = n.into().to_string();
    let mut out = String::with_capacity(digits.len() + 4);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup_and_urls_no_delimiters() {
        let hostile = r#"<script>alert('x')</script> & "quoted""#;
        let escaped = Esc(hostile).to_string();
        assert_eq!(
            escaped,
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"
        );
        assert!(!escaped.contains(['<', '>', '"', '\'']));
        assert_eq!(Esc("plain text").to_string(), "plain text");
        assert_eq!(url("a b/c?d=e&f#g%ü"), "a%20b%2Fc%3Fd%3De%26f%23g%25%C3%BC");
        let pairs = vec![
            ("q".to_string(), "x&y".to_string()),
            ("sort".into(), "-name".into()),
        ];
        assert_eq!(query(&pairs), "?q=x%26y&sort=-name");
        assert_eq!(query(&[]), "");
    }

    #[test]
    fn numbers_and_times_read_well() {
        assert_eq!(count(1234567u64), "1\u{202f}234\u{202f}567");
        assert_eq!(count(999u64), "999");
        assert_eq!(duration(TimeDelta::milliseconds(850)), "850 ms");
        assert_eq!(duration(TimeDelta::milliseconds(12_345)), "12.3 s");
        assert_eq!(duration(TimeDelta::seconds(245)), "4 min 5 s");
        let now = Utc::now();
        let t = time(Some(now - TimeDelta::seconds(300)), now);
        assert!(t.contains("(5 min ago)"), "{t}");
        assert!(time(None, now).contains('—'));
    }
}
