//! The web console: over plain HTTP (headers, sessions, CSRF, escaping, the same rows as the
//! API), and in a real browser (headless Chromium over WebDriver: the pages a user clicks
//! through, the refresh button, the sign-in, a planted `<script>`), writing a screenshot of each
//! page to `target/console-screenshots/`. A daemon polls the simulator on loopback for each.

mod common;
#[path = "console/webdriver.rs"]
mod webdriver;

use common::*;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use ses_inventory::Inventory::{self, Carriers, Resources, Services};
use ses_inventory::cmd::root::{App, Notify};
use ses_inventory::config::Config;
use ses_inventory::model::secret::Secret;
use ses_inventory::serve::server::Bound;
use ses_inventory::time::clock::Clock;
use ses_inventory_sim::{SimConfig, Simulator};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "console-test-token-4b1d";
/// The planted item's name: markup that must stay text.
const PLANTED: &str = "PLANTED <script>alert(\"planted\")</script> & <b>bold</b>";
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

struct Running {
    sim: Simulator,
    _sc: SimConfig,
    app: App,
    base: String,
    /// Follows no redirects, keeps no cookies: the tests look at both.
    http: reqwest::Client,
    token: Option<&'static str>,
    /// The store's directory, when the daemon keeps one (removed by [`Running::stop`]).
    dir: Option<PathBuf>,
}

/// The simulator's default data plus one service whose name is [`PLANTED`].
async fn planted_sim() -> (Simulator, SimConfig) {
    let sc = SimConfig::default();
    let sim = Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .expect("sim starts");
    let mut items = sim.items(Services);
    let mut planted = service("PLANTED-1", "Operational");
    planted["name"] = json!(PLANTED);
    items.push(planted);
    sim.set_items(Services, items);
    (sim, sc)
}

impl Running {
    /// The simulator's default data plus one service whose name is [`PLANTED`]; a daemon with
    /// the API (and the console) on an ephemeral loopback port, with `token` if given, and no
    /// store.
    async fn start(token: Option<&'static str>) -> Running {
        let (sim, sc) = planted_sim().await;
        Running::with(sim, sc, token, false).await
    }

    /// A daemon (the composition root, as `run` starts it) polling `sim`, with the API and the
    /// console on an ephemeral loopback port, `token` if given, and a store in a new temporary
    /// directory if `store`; once every inventory is ready and settled.
    async fn with(
        sim: Simulator,
        sc: SimConfig,
        token: Option<&'static str>,
        store: bool,
    ) -> Running {
        static STORES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let mut cfg: Config = config(&sim, &sc);
        cfg.api.token = Secret::new(token.unwrap_or_default());
        let dir = store.then(|| {
            let n = STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("sesinv-console-store-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            dir
        });
        if let Some(dir) = &dir {
            cfg.store.path = dir.join("inventory.db").display().to_string();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let api = Bound::from_listener(listener, Secret::new(token.unwrap_or_default()));
        let app = App::start(Arc::new(cfg), Clock::System, Some(api), Notify::Off)
            .expect("daemon starts");
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let run = Running {
            sim,
            _sc: sc,
            app,
            base,
            http,
            token,
            dir,
        };
        tokio::time::timeout(Duration::from_secs(30), run.app.cache().wait_all_ready())
            .await
            .expect("every inventory ready within 30 s");
        // And settled: the settling pass after each buildup has run, the pollers are idle.
        for inv in Inventory::ALL {
            settled(run.app.cache(), inv, 30).await;
        }
        run
    }

    /// A console page with the session `cookie` (if any): status, headers, body.
    async fn page(&self, path: &str, cookie: Option<&str>) -> (StatusCode, HeaderMap, String) {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        let r = r.send().await.unwrap();
        (r.status(), r.headers().clone(), r.text().await.unwrap())
    }

    /// A form POST with the session `cookie` and extra headers.
    async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(form));
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let r = r.send().await.unwrap();
        (r.status(), r.headers().clone(), r.text().await.unwrap())
    }

    /// The API's answer (with the bearer token when there is one).
    async fn api(&self, path_and_query: &str) -> (HeaderMap, Value) {
        let mut r = self.http.get(format!("{}{path_and_query}", self.base));
        if let Some(t) = self.token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path_and_query}");
        (r.headers().clone(), r.json().await.unwrap())
    }

    /// The ids and the total the API lists for `/api/v1/{inv}?{query}`.
    async fn api_rows(&self, inv: &str, query: &str) -> (Vec<String>, usize) {
        let (headers, body) = self.api(&format!("/api/v1/{inv}?{query}")).await;
        let ids = body
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        let total = headers["x-total-count"].to_str().unwrap().parse().unwrap();
        (ids, total)
    }

    /// The change log's entries as `GET /api/v1/changes?{query}` lists them (seq, id, kind;
    /// newest first), and its `next` link.
    async fn api_changes(&self, query: &str) -> (Vec<(i64, String, String)>, Option<String>) {
        let (_, body) = self.api(&format!("/api/v1/changes?{query}")).await;
        let entries = body["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["seq"].as_i64().unwrap(),
                    c["id"].as_str().unwrap().to_string(),
                    c["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (entries, body["next"].as_str().map(str::to_string))
    }

    /// Asks for a refresh of `inv` until the change log holds `n` entries (at most 30 s).
    async fn poll_until_changes(&self, inv: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let r = self
                .http
                .post(format!("{}/api/v1/refresh?inventory={inv}", self.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if self.api_changes("limit=1000").await.0.len() >= n {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the change log never reached {n} entries"
            );
        }
    }

    async fn stop(self) {
        self.app.stop().await;
        self.sim.shutdown().await;
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A form's body, `application/x-www-form-urlencoded`.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// HTML entities as the console writes them, undone.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The values of `attr="..."` after each `marker` in `html`.
fn attr_values(html: &str, marker: &str) -> Vec<String> {
    html.split(marker)
        .skip(1)
        .map(|rest| unescape(&rest[..rest.find('"').unwrap()]))
        .collect()
}

/// The value of `name="..."` in the tag `tag`.
fn attr(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let at = tag.find(&marker)? + marker.len();
    Some(unescape(&tag[at..at + tag[at..].find('"')?]))
}

/// The entries of a Changes page, in order: (seq, id, kind).
fn change_rows(html: &str) -> Vec<(i64, String, String)> {
    html.split("<tr data-seq=\"")
        .skip(1)
        .map(|rest| {
            let tag = format!(" data-seq=\"{}", &rest[..rest.find('>').unwrap()]);
            (
                attr(&tag, "data-seq").unwrap().parse().unwrap(),
                attr(&tag, "data-id").unwrap(),
                attr(&tag, "data-kind").unwrap(),
            )
        })
        .collect()
}

/// The row ids of a table page, in order.
fn row_ids(html: &str) -> Vec<String> {
    attr_values(html, "<tr data-id=\"")
}

/// The text of the element with `id` (up to its first tag).
fn text_of(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &html[at + marker.len()..];
    unescape(&rest[..rest.find('<').unwrap()])
}

/// The `href` of the link with `id`, if there is one.
fn href_of(html: &str, id: &str) -> Option<String> {
    let before = &html[..html.find(&format!("id=\"{id}\""))?];
    let at = before.rfind("href=\"")? + "href=\"".len();
    Some(unescape(&before[at..at + before[at..].find('"')?]))
}

fn csrf(html: &str) -> String {
    attr_values(html, "name=\"csrf\" value=\"")
        .into_iter()
        .next()
        .expect("a form with a CSRF token")
}

/// `name=value` of the session cookie a response set.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("ses_console="))
        .map(|v| v.split(';').next().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_show_the_apis_rows_and_upstream_text_stays_text() {
    let run = Running::start(None).await;
    let (status, headers, html) = run.page("/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-security-policy"], CSP);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert_eq!(headers["x-frame-options"], "DENY");
    let set = headers[SET_COOKIE].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let (_, status_json) = run.api("/api/v1/status").await;
    for inv in ["services", "carriers", "resources"] {
        assert_eq!(
            text_of(&html, &format!("count-{inv}")),
            status_json["inventories"][inv]["items"].to_string(),
            "{inv} count"
        );
    }
    assert!(!html.contains("<script"), "the console has no script");

    // The same query string, the same rows in the same order, the same total.
    for query in [
        "",
        "sort=-name&limit=7",
        "q=astra&sort=name&offset=3&limit=5",
        "status=Operational&status=OPERATIONAL&sort=-type,name&limit=20&offset=20",
        "fields=name,status&sort=status&limit=50&offset=1",
        "q=no-such-text-anywhere",
        "name=&limit=3",
    ] {
        for inv in ["services", "carriers", "resources"] {
            let (status, _, html) = run.page(&format!("/ui/{inv}?{query}"), None).await;
            assert_eq!(status, StatusCode::OK, "/ui/{inv}?{query}");
            let (ids, total) = run.api_rows(inv, query).await;
            assert_eq!(row_ids(&html), ids, "/ui/{inv}?{query}");
            assert_eq!(text_of(&html, "total"), total.to_string(), "{inv}?{query}");
        }
    }
    // The API's cursor (`after`, from its `Link: rel="next"`): the same rows, and a next page
    // by cursor again.
    let (first, _) = run.api_rows("services", "limit=10").await;
    for query in [
        format!("after={}&limit=5", first[3]),
        format!("status=Operational&after={}&limit=4&fields=name", first[5]),
    ] {
        let (status, _, html) = run.page(&format!("/ui/services?{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        let (ids, total) = run.api_rows("services", &query).await;
        assert_eq!(row_ids(&html), ids, "{query}");
        assert_eq!(text_of(&html, "total"), total.to_string(), "{query}");
        let next = href_of(&html, "page-next");
        let expected = format!("after={}", ids.last().unwrap());
        assert!(
            next.as_deref().is_some_and(|n| n.contains(&expected)),
            "{query}: next page {next:?}"
        );
    }
    let (_, all) = run.api_rows("services", "limit=1000").await;
    assert!(all > 100, "the default data and the planted item: {all}");

    // The planted name is text on the table and on the item page.
    for path in ["/ui/services?q=PLANTED", "/ui/services/PLANTED-1"] {
        let (status, _, html) = run.page(path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!html.contains("<script"), "{path}: markup passed through");
        assert!(!html.contains("<b>bold"), "{path}: markup passed through");
        assert!(
            html.contains("PLANTED &lt;script&gt;alert(&quot;planted&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"),
            "{path}: the name is not shown as text"
        );
    }

    // Related items are linked both ways: a service to its supporting resource, the resource
    // back to the service.
    let (_, listed) = run
        .api("/api/v1/services?fields=supporting_resources&limit=1000")
        .await;
    let mut linked = None;
    for row in listed.as_array().unwrap() {
        for r in row["supporting_resources"].as_array().unwrap() {
            let rid = r["id"].as_str().unwrap_or_default();
            let found = run
                .http
                .get(format!("{}/api/v1/resources/{rid}", run.base))
                .send()
                .await
                .unwrap()
                .status();
            if found == StatusCode::OK && linked.is_none() {
                linked = Some((row["id"].as_str().unwrap().to_string(), rid.to_string()));
            }
        }
        if linked.is_some() {
            break;
        }
    }
    let (sid, rid) = linked.expect("a service whose supporting resource is cached");
    let (_, _, html) = run.page(&format!("/ui/services/{sid}"), None).await;
    assert!(
        html.contains(&format!("href=\"/ui/resources/{rid}\"")),
        "{sid} → {rid}"
    );
    let (_, _, html) = run.page(&format!("/ui/resources/{rid}"), None).await;
    let back = &html[html
        .find("id=\"referrers-services\"")
        .expect("the services naming it")..];
    assert!(
        back.contains(&format!("href=\"/ui/services/{sid}\"")),
        "{rid} ← {sid}"
    );

    // Without a store: the Changes page and the item's history say so.
    let (status, _, html) = run.page("/ui/changes", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text_of(&html, "no-store").contains("store.path"), "{html}");
    let (_, _, html) = run.page(&format!("/ui/services/{sid}"), None).await;
    assert!(text_of(&html, "no-store").contains("store.path"));

    // Bad requests are pages that say what was wrong.
    let (status, _, html) = run.page("/ui/services?limit=5000", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text_of(&html, "query-error").contains("limit"), "{html}");
    let (status, _, html) = run.page("/ui/services?colour=<i>red</i>", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("colour") && !html.contains("<i>red"));
    assert_eq!(run.page("/ui/widgets", None).await.0, StatusCode::NOT_FOUND);
    let (status, _, html) = run.page("/ui/services/NO%3Cb%3ESUCH", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("NO&lt;b&gt;SUCH"));

    // The CSV: the page's filters, sort and columns, every matching row (not the page's).
    let query = "status=Operational&sort=name&fields=name,status&limit=5&offset=2";
    let r = run
        .http
        .get(format!("{}/ui/csv/services?{query}", run.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("ID,Name,Status"));
    let csv_ids: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    let (ids, total) = run
        .api_rows(
            "services",
            "status=Operational&sort=name&fields=name&limit=1000",
        )
        .await;
    assert_eq!(csv_ids.len(), total);
    assert_eq!(csv_ids, ids);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_need_the_session_and_its_csrf_token() {
    let run = Running::start(None).await;
    let (_, headers, _) = run.page("/", None).await;
    let cookie = session_cookie(&headers).expect("an anonymous session");
    let (status, headers, html) = run.page("/ui/status", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        session_cookie(&headers).is_none(),
        "a known session is not replaced"
    );
    let token = csrf(&html);
    let (_, before) = run.api("/api/v1/status").await;
    assert!(before["inventories"]["services"]["last_refresh"].is_null());
    let requests = run.sim.requests().len();

    let other = format!("{}x", &token[..token.len() - 1]);
    // (session cookie, CSRF token, extra headers)
    type Attempt<'a> = (Option<&'a str>, &'a str, &'a [(&'a str, &'a str)]);
    let refused: [Attempt; 4] = [
        (Some(&cookie), &other, &[]),
        (None, &token, &[]),
        (Some(&cookie), &token, &[("origin", "http://evil.example")]),
        (Some(&cookie), &token, &[("sec-fetch-site", "cross-site")]),
    ];
    for (i, (cookie, csrf, headers)) in refused.iter().enumerate() {
        let form = [("csrf", *csrf), ("inventory", "services")];
        let (status, _, html) = run.post("/ui/refresh", *cookie, &form, headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "case {i}");
        assert!(
            html.contains("CSRF") || html.contains("sign in"),
            "case {i}"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        run.sim.requests().len(),
        requests,
        "a refused POST asked the upstream for nothing"
    );

    let form = [("csrf", token.as_str()), ("inventory", "services")];
    let origin = run.base.clone();
    let (status, headers, _) = run
        .post("/ui/refresh", Some(&cookie), &form, &[("origin", &origin)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = headers[LOCATION].to_str().unwrap();
    assert!(
        to == "/ui/status?requested=refresh&services=queued"
            || to == "/ui/status?requested=refresh&services=joined",
        "{to}"
    );
    let (_, _, html) = run.page(to, Some(&cookie)).await;
    assert!(text_of(&html, "flash").contains("services"), "{html}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, s) = run.api("/api/v1/status").await;
        if !s["inventories"]["services"]["last_refresh"].is_null() {
            assert!(s["inventories"]["carriers"]["last_refresh"].is_null());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the refresh never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_nothing_shows_before_signing_in() {
    let run = Running::start(Some(TOKEN)).await;
    let (ids, _) = run.api_rows("services", "limit=5").await;
    for (path, next) in [
        ("/", "%2F"),
        (
            "/ui/services?q=a&sort=-name",
            "%2Fui%2Fservices%3Fq%3Da%26sort%3D-name",
        ),
        ("/ui/status", "%2Fui%2Fstatus"),
        ("/ui/csv/services", "%2Fui%2Fcsv%2Fservices"),
        (&format!("/ui/services/{}", ids[0]), ""),
    ] {
        let (status, headers, html) = run.page(path, None).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        let to = headers[LOCATION].to_str().unwrap();
        assert!(to.starts_with("/ui/signin?next="), "{to}");
        assert!(to.ends_with(next), "{to}");
        assert!(session_cookie(&headers).is_none(), "{path}");
        assert!(!html.contains(&ids[0]));
    }
    let (status, _, html) = run.page("/ui/signin?next=%2Fui%2Fstatus", None).await;
    assert_eq!(status, StatusCode::OK);
    for id in &ids {
        assert!(!html.contains(id.as_str()), "the sign-in page shows {id}");
    }
    assert!(!html.contains("count-services"));
    // No POST without a session.
    let (status, _, _) = run.post("/ui/refresh", None, &[("csrf", "x")], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A wrong token: refused, not echoed, no session.
    let (status, headers, html) = run
        .post(
            "/ui/signin",
            None,
            &[("token", "guess-Zq9"), ("next", "/")],
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(session_cookie(&headers).is_none());
    assert!(html.contains("not right"));
    assert!(!html.contains("guess-Zq9"), "the attempt is echoed");
    // From another site: refused even with the right token.
    let (status, headers, _) = run
        .post(
            "/ui/signin",
            None,
            &[("token", TOKEN)],
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(session_cookie(&headers).is_none());

    // The right token: a session, back to where the browser was going (this console only).
    let (status, headers, html) = run
        .post(
            "/ui/signin",
            None,
            &[("token", TOKEN), ("next", "/ui/status")],
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(headers[LOCATION], "/ui/status");
    let set = headers[SET_COOKIE].to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    assert!(!set.contains(TOKEN), "the token is not the cookie");
    let cookie = session_cookie(&headers).unwrap();
    let (_, headers, _) = run
        .post(
            "/ui/signin",
            None,
            &[("token", TOKEN), ("next", "//evil.example/")],
            &[],
        )
        .await;
    assert_eq!(headers[LOCATION], "/");

    let (status, _, html) = run.page("/", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, s) = run.api("/api/v1/status").await;
    assert_eq!(
        text_of(&html, "count-services"),
        s["inventories"]["services"]["items"].to_string()
    );
    assert!(!html.contains(TOKEN), "the page shows the token");
    // The cookie is the console's, not the API's.
    let r = run
        .http
        .get(format!("{}/api/v1/status", run.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Signing out ends the session.
    let (_, _, html) = run.page("/ui/status", Some(&cookie)).await;
    let form = [("csrf", csrf(&html))];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, headers, _) = run.post("/ui/signout", Some(&cookie), &form, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/ui/signin");
    assert!(headers[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let (status, _, _) = run.page("/", Some(&cookie)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poll_history_survives_a_restart_and_old_files_gain_it() {
    let (sim, sc) = empty_sim().await;
    sim.set_items(Services, services(30));
    sim.set_items(Carriers, vec![carrier("CAR-1")]);
    sim.set_items(Resources, vec![resource("RES-1", "Antenna")]);
    let dir = std::env::temp_dir().join(format!("sesinv-console-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("inventory.db");
    let mut cfg = config(&sim, &sc);
    cfg.store.path = path.display().to_string();
    let cfg = Arc::new(cfg);
    let start = || async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let api = Bound::from_listener(listener, Secret::default());
        let app = App::start(cfg.clone(), Clock::System, Some(api), Notify::Off).expect("starts");
        tokio::time::timeout(Duration::from_secs(30), app.cache().wait_all_ready())
            .await
            .expect("ready within 30 s");
        // Settled (the first start's settling passes have run) and idle.
        for inv in Inventory::ALL {
            settled(app.cache(), inv, 30).await;
        }
        (app, base)
    };
    let history = |app: &App| Inventory::ALL.map(|inv| app.cache().history(inv));

    let (app, _) = start().await;
    let first = history(&app);
    assert_eq!(
        first[0].len(),
        2,
        "two full passes of services: the buildup and its settling pass"
    );
    assert_eq!((first[0][0].items, first[0][1].items), (30, 30));
    // When the first start's last poll ended: every poll after it is from a later start.
    let first_end = first.iter().flatten().map(|p| p.finished).max().unwrap();
    app.stop().await;

    // (The warm start may refresh at once: its polls come after the stored ones.)
    let (app, base) = start().await;
    let again = history(&app);
    for (inv, (a, f)) in Inventory::ALL.iter().zip(again.iter().zip(&first)) {
        assert_eq!(a[..f.len()], f[..], "{inv}: the stored history comes back");
    }
    // The overview still tells when the last full pass ran (the live status forgot it).
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let html = get_text(&http, format!("{base}/")).await;
    let full = first[1]
        .last()
        .unwrap()
        .finished
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let card = &html[html.find("id=\"carriers-last-full\"").unwrap()..];
    assert!(
        card[..card.find("</dd>").unwrap()].contains(&full),
        "the carriers' last full pass ({full}) is not on the overview"
    );
    let html = get_text(&http, format!("{base}/ui/status")).await;
    let part = &html[html.find("id=\"carriers-last-full\"").unwrap()..];
    let part = &part[..part.find("</p>").unwrap()];
    assert!(
        part.contains(&full) && part.contains("from the poll history"),
        "status page: {part}"
    );
    app.stop().await;

    // A file from before the poll history: it opens, and gains the table.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE poll_history").unwrap();
    drop(conn);
    let (app, _) = start().await;
    let fresh = history(&app);
    assert!(
        fresh.iter().flatten().all(|p| p.started > first_end),
        "nothing from before: {fresh:?}"
    );
    app.stop().await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM poll_history", [], |r| r.get(0))
        .unwrap();
    let before: i64 = conn
        .query_row(
            "SELECT count(*) FROM poll_history WHERE started <= ?1",
            [first_end.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(before, 0, "the dropped table's rows are gone");
    assert!(n as usize >= fresh.iter().map(Vec::len).sum::<usize>());
    drop(conn);
    std::fs::remove_dir_all(&dir).unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_changes_page_shows_the_apis_entries_and_an_items_history() {
    let (sim, sc) = empty_sim().await;
    sim.set_items(Services, services(5));
    sim.set_items(Carriers, vec![carrier("CAR-1"), carrier("CAR-2")]);
    sim.set_items(Resources, vec![resource("RES-1", "Antenna")]);
    let run = Running::with(sim, sc, None, true).await;
    // The first fill: a baseline per inventory (the store's writer may lag the cache a little).
    run.poll_until_changes("services", 3).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before_rename = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;

    // A rename (only the name: the other lines of its JSON stay as they were), then in one
    // poll a status that leaves the keep rules and a new service.
    const RENAMED: &str = "Renamed <two> & co";
    let mut items = run.sim.items(Services);
    items[1]["name"] = json!(RENAMED);
    run.sim.set_items(Services, items.clone());
    run.poll_until_changes("services", 4).await;
    items[2]["status"] = json!("Terminated");
    items.push(service("SVC-0006", "Operational"));
    run.sim.set_items(Services, items);
    run.poll_until_changes("services", 6).await;

    let (all, _) = run.api_changes("").await;
    let kinds: Vec<(&str, &str)> = all
        .iter()
        .map(|(_, id, kind)| (id.as_str(), kind.as_str()))
        .collect();
    assert_eq!(
        kinds[..3],
        [
            // One poll: its removals are written first (they copy the rows they remove).
            ("SVC-0006", "added"),
            ("SVC-0003", "removed"),
            ("SVC-0002", "updated")
        ],
        "{all:?}"
    );
    let (_, body) = run.api("/api/v1/changes?kind=added").await;
    let poll = body["changes"][0]["poll_started"]
        .as_str()
        .unwrap()
        .to_string();
    let until = before_rename.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);

    // The same query string, the same entries in the same order, the same next page.
    for query in [
        String::new(),
        "inventory=services".into(),
        "kind=updated,removed".into(),
        "kind=added&kind=baseline".into(),
        "column=name".into(),
        "inventory=services&id=SVC-0003".into(),
        "since=1h&inventory=carriers".into(),
        format!("until={until}"),
        "limit=2".into(),
        format!("limit=2&after={}", all[1].0),
        format!("poll={poll}&inventory=services"),
        "id=NO-SUCH-ID".into(),
    ] {
        let path = format!("/ui/changes?{query}");
        let (status, _, html) = run.page(&path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let (entries, next) = run.api_changes(&query).await;
        assert_eq!(change_rows(&html), entries, "{path}");
        assert_eq!(
            href_of(&html, "page-next"),
            next.map(|n| n.replace("/api/v1/changes", "/ui/changes")),
            "{path}"
        );
        // Its link to the API is the same query.
        let json = href_of(&html, "as-json").unwrap();
        let (_, body) = run.api(&json).await;
        assert_eq!(body["changes"].as_array().unwrap().len(), entries.len());
    }
    // Each filter did filter.
    for (query, n) in [
        format!("until={until}"),
        format!("poll={poll}&inventory=services"),
        "column=name".into(),
        "id=NO-SUCH-ID".into(),
        "kind=updated,removed".into(),
        "inventory=carriers".into(),
    ]
    .into_iter()
    .zip([3, 2, 1, 0, 2, 1])
    {
        let (_, _, html) = run.page(&format!("/ui/changes?{query}"), None).await;
        assert_eq!(change_rows(&html).len(), n, "{query}");
    }

    // A form's empty fields: the same query without them, in the address bar.
    let (status, headers, _) = run
        .page(
            "/ui/changes?inventory=&kind=updated&column=&since=&until=&id=",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/ui/changes?kind=updated");
    // A wrong parameter is named, as by the API.
    let (status, _, html) = run.page("/ui/changes?kind=moved", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let r = run
        .http
        .get(format!("{}/api/v1/changes?kind=moved", run.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let api_error: Value = r.json().await.unwrap();
    assert_eq!(
        text_of(&html, "query-error"),
        api_error["error"].as_str().unwrap()
    );

    // The rename reads `name: before → after`, as text.
    let (_, _, html) = run.page("/ui/changes?column=name", None).await;
    assert!(
        html.contains(
            "<code>name</code>: <del>Service SVC-0002</del> → <ins>Renamed &lt;two&gt; &amp; co</ins>"
        ),
        "{html}"
    );
    assert!(!html.contains("<two>"));
    // Its id links to the item's page, whose history lists the item's entries and whose
    // side by side marks the renamed line, and that line only.
    assert!(html.contains("href=\"/ui/services/SVC-0002\""));
    let (status, _, html) = run.page("/ui/services/SVC-0002", None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, history) = run.api("/api/v1/services/SVC-0002/history").await;
    let mut seqs: Vec<String> = history["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"]["seq"].to_string())
        .collect();
    seqs.reverse();
    let timeline = &html[html.find("id=\"timeline\"").unwrap()..];
    assert_eq!(attr_values(timeline, "data-seq=\""), seqs);
    assert_eq!(
        seqs.len(),
        1,
        "the rename only (the first fill is a baseline)"
    );
    assert_eq!(attr_values(&html, "id=\"version-a\" data-version=\""), seqs);
    assert_eq!(
        attr_values(&html, "id=\"version-b\" data-version=\""),
        ["now"]
    );
    let diff = &html[html.find("id=\"diff\"").unwrap()..];
    let changed: Vec<&str> = diff.split("<tr class=\"changed\">").skip(1).collect();
    assert_eq!(changed.len(), 1, "one line differs: {diff}");
    let line = &changed[0][..changed[0].find("</tr>").unwrap()];
    assert!(
        line.contains("class=\"a del\"><code>  &quot;name&quot;: &quot;Service SVC-0002&quot;,")
            && line.contains(
                "class=\"b ins\"><code>  &quot;name&quot;: &quot;Renamed &lt;two&gt; &amp; co&quot;,"
            ),
        "{line}"
    );
    // Two versions picked by the query: the same one twice differs nowhere.
    let seq = &seqs[0];
    let (_, _, html) = run
        .page(&format!("/ui/services/SVC-0002?a={seq}&b={seq}"), None)
        .await;
    assert!(text_of(&html, "compare-summary").contains("the same"));
    assert!(!html.contains("<tr class=\"changed\">"));
    let (_, _, html) = run.page("/ui/services/SVC-0002?a=now&b=999999", None).await;
    assert!(
        text_of(&html, "pick-error").contains("b: `999999`"),
        "{html}"
    );

    // An item no longer in the inventory: its history, from the change log.
    let (status, _, html) = run.page("/ui/services/SVC-0003", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text_of(&html, "not-cached").contains("removed"), "{html}");
    let timeline = &html[html.find("id=\"timeline\"").unwrap()..];
    assert_eq!(
        attr_values(timeline, "data-kind=\""),
        ["removed"],
        "{timeline}"
    );
    assert_eq!(
        run.page("/ui/services/NEVER-THERE", None).await.0,
        StatusCode::NOT_FOUND
    );

    // The overview's chart links each poll to its changes; the status page's polls too.
    let link = format!(
        "/ui/changes?poll={}&inventory=services",
        poll.replace(':', "%3A")
    );
    for page in ["/", "/ui/status"] {
        let (_, _, html) = run.page(page, None).await;
        assert!(
            attr_values(&html, "<a href=\"").contains(&link),
            "{page} has no link to {link}"
        );
    }
    let (_, _, html) = run.page(&link, None).await;
    let (entries, _) = run
        .api_changes(&format!("poll={poll}&inventory=services"))
        .await;
    assert_eq!(change_rows(&html), entries);
    assert_eq!(entries.len(), 2);
    run.stop().await;
}

/// Where the browser test writes its screenshots (CI keeps the folder).
fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("console-screenshots")
}

/// The table the browser shows is the API's answer to the query in the browser's address bar.
async fn same_rows_as_the_api(b: &webdriver::Browser, run: &Running) -> usize {
    let url = b.current_url().await;
    let rest = url.strip_prefix(&format!("{}/ui/", run.base)).unwrap();
    let (inv, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut shown = Vec::new();
    for row in b.find_all("#rows tbody tr[data-id]").await {
        shown.push(b.attribute(&row, "data-id").await.unwrap());
    }
    let (ids, total) = run.api_rows(inv, query).await;
    assert_eq!(shown, ids, "{url}");
    let total_el = b.find("#total").await;
    assert_eq!(b.text(&total_el).await, total.to_string(), "{url}");
    shown.len()
}

/// The Changes page the browser shows holds the API's entries for the query in its address bar.
async fn same_changes_as_the_api(b: &webdriver::Browser, run: &Running) -> usize {
    let url = b.current_url().await;
    let query = url
        .strip_prefix(&format!("{}/ui/changes", run.base))
        .unwrap()
        .trim_start_matches('?');
    let mut shown = Vec::new();
    for row in b.find_all("#changes tbody tr[data-seq]").await {
        shown.push((
            b.attribute(&row, "data-seq")
                .await
                .unwrap()
                .parse()
                .unwrap(),
            b.attribute(&row, "data-id").await.unwrap(),
            b.attribute(&row, "data-kind").await.unwrap(),
        ));
    }
    let (entries, _) = run.api_changes(query).await;
    assert_eq!(shown, entries, "{url}");
    shown.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser() {
    let Some((chromium, chromedriver)) = webdriver::tools() else {
        return;
    };
    let shots = screenshots();
    // With a store: the change log too.
    let (sim, sc) = planted_sim().await;
    let run = Running::with(sim, sc, None, true).await;
    let driver = webdriver::Driver::start(chromium, &chromedriver).await;
    let b = driver.session().await;
    let base = run.base.clone();

    // The overview's counts are the API's.
    b.goto(&format!("{base}/")).await;
    let (_, s) = run.api("/api/v1/status").await;
    for inv in ["services", "carriers", "resources"] {
        let el = b.find(&format!("#count-{inv}")).await;
        assert_eq!(
            b.text(&el).await,
            s["inventories"][inv]["items"].to_string()
        );
    }

    // Search, filter, sort, page, columns: every step shows exactly the API's rows.
    b.goto(&format!("{base}/ui/services?limit=5")).await;
    let q = b.find("#q").await;
    b.type_into(&q, "a").await;
    let operational = b.find("#filter-status input[value=\"Operational\"]").await;
    b.click(&operational).await;
    b.click_to_load(&b.find("#apply").await).await;
    let url = b.current_url().await;
    assert!(
        url.contains("q=a") && url.contains("status=Operational") && url.contains("limit=5"),
        "{url}"
    );
    assert_eq!(same_rows_as_the_api(&b, &run).await, 5);
    b.click_to_load(&b.find("#sort-name").await).await;
    assert!(b.current_url().await.contains("sort=name"));
    same_rows_as_the_api(&b, &run).await;
    b.click_to_load(&b.find("#sort-name").await).await;
    assert!(b.current_url().await.contains("sort=-name"));
    same_rows_as_the_api(&b, &run).await;
    b.click_to_load(&b.find("#page-next").await).await;
    assert!(b.current_url().await.contains("offset=5"));
    assert_eq!(same_rows_as_the_api(&b, &run).await, 5);
    b.click(&b.find("details.columns summary").await).await;
    b.click_to_load(&b.find("#col-description").await).await;
    assert!(b.current_url().await.contains("fields="));
    same_rows_as_the_api(&b, &run).await;
    assert!(
        b.find_all("#sort-description").await.is_empty(),
        "the column is hidden"
    );
    b.goto(&format!("{base}/ui/services?limit=20")).await;
    same_rows_as_the_api(&b, &run).await;
    b.screenshot(&shots.join("services.png")).await;

    // An item page shows its upstream JSON, as the API has it.
    let first = b.find("#rows tbody tr a").await;
    let id = b.text(&first).await;
    b.click_to_load(&first).await;
    assert!(
        b.current_url()
            .await
            .ends_with(&format!("/ui/services/{id}"))
    );
    let pre = b.find("#upstream pre").await;
    let shown: Value = serde_json::from_str(&b.text(&pre).await).expect("the upstream JSON");
    let (_, item) = run.api(&format!("/api/v1/services/{id}")).await;
    assert_eq!(shown, item["upstream"]);
    b.screenshot(&shots.join("item.png")).await;

    // A planted <script> is text: no dialog, no script element, the text is there.
    for path in ["/ui/services?q=PLANTED", "/ui/services/PLANTED-1"] {
        b.goto(&format!("{base}{path}")).await;
        assert_eq!(b.dialog().await, None, "{path}: a dialog opened");
        assert!(
            b.find_all("script").await.is_empty(),
            "{path}: a script element"
        );
        assert!(
            b.find_all("b").await.is_empty(),
            "{path}: markup from upstream"
        );
        let main = b.find("main").await;
        assert!(
            b.text(&main).await.contains(PLANTED),
            "{path}: the name is missing"
        );
    }

    // The refresh button: a poll runs, and the status page then shows it.
    b.goto(&format!("{base}/ui/status")).await;
    assert!(
        b.find_all("#services-last-refresh time").await.is_empty(),
        "no refresh yet"
    );
    b.click_to_load(&b.find("#refresh-services").await).await;
    let flash = b.find("#flash").await;
    let text = b.text(&flash).await;
    assert!(
        text.contains("services queued") || text.contains("services joined"),
        "{text}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let times = loop {
        let times = b.find_all("#services-last-refresh time").await;
        if !times.is_empty() {
            break times;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the refresh never showed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        b.goto(&format!("{base}/ui/status")).await;
    };
    let (_, s) = run.api("/api/v1/status").await;
    let refresh = &s["inventories"]["services"]["last_refresh"];
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis()
    };
    let started = b.attribute(&times[0], "datetime").await.unwrap();
    assert_eq!(ms(&started), ms(refresh["started"].as_str().unwrap()));
    assert_eq!(refresh["kind"], "refresh");
    b.screenshot(&shots.join("status.png")).await;
    // The overview once more, its services chart with the refresh in it.
    b.goto(&format!("{base}/")).await;
    b.screenshot(&shots.join("overview.png")).await;

    // The change log: the first fill, then a rename.
    run.poll_until_changes("services", 3).await;
    let mut items = run.sim.items(Services);
    let planted = items
        .iter()
        .position(|i| i["externalId"] == "PLANTED-1")
        .unwrap();
    items[planted]["name"] = json!("Renamed in the browser");
    run.sim.set_items(Services, items);
    run.poll_until_changes("services", 4).await;
    // The navigation leads to the Changes page, which shows the API's entries.
    b.goto(&format!("{base}/")).await;
    b.click_to_load(&b.find("header a[href=\"/ui/changes\"]").await)
        .await;
    assert_eq!(same_changes_as_the_api(&b, &run).await, 4);
    // Filtering by kind: the form's query (its empty fields dropped) is the API's.
    b.click(&b.find("#kind-updated").await).await;
    b.click_to_load(&b.find("#apply").await).await;
    assert_eq!(
        b.current_url().await,
        format!("{base}/ui/changes?kind=updated")
    );
    assert_eq!(same_changes_as_the_api(&b, &run).await, 1);
    b.screenshot(&shots.join("changes.png")).await;
    // The id leads to the item, whose history has the rename and marks the renamed line.
    b.click_to_load(&b.find("#changes tbody tr a[href^=\"/ui/services/\"]").await)
        .await;
    assert!(b.current_url().await.ends_with("/ui/services/PLANTED-1"));
    let (_, history) = run.api("/api/v1/services/PLANTED-1/history").await;
    let entries = b.find_all("#timeline li[data-seq]").await;
    assert_eq!(entries.len(), history["changes"].as_array().unwrap().len());
    let changed = b.find_all("#diff tr.changed").await;
    assert_eq!(changed.len(), 1);
    let line = b.text(&changed[0]).await;
    assert!(
        // The old name as its JSON text (quotes escaped), the new one.
        line.contains(&serde_json::to_string(PLANTED).unwrap())
            && line.contains("\"Renamed in the browser\""),
        "{line}"
    );
    assert_eq!(b.dialog().await, None, "the old planted name stays text");
    let url = b.current_url().await;
    b.goto(&format!("{url}#compare")).await;
    b.screenshot(&shots.join("history.png")).await;
    // The overview's chart: the last services poll links to its changes, the rename.
    b.goto(&format!("{base}/")).await;
    let polls = b.find_all("#card-services svg a").await;
    b.click_to_load(polls.last().unwrap()).await;
    let url = b.current_url().await;
    assert!(url.contains("/ui/changes?poll="), "{url}");
    assert_eq!(same_changes_as_the_api(&b, &run).await, 1);
    b.quit().await;
    run.stop().await;

    // With a token: the sign-in form first; a wrong token is refused; the right one shows all.
    let run = Running::start(Some(TOKEN)).await;
    let base = run.base.clone();
    let b = driver.session().await;
    b.goto(&format!("{base}/ui/services")).await;
    assert!(b.current_url().await.contains("/ui/signin?next="));
    let (ids, _) = run.api_rows("services", "limit=3").await;
    let source = b.source().await;
    for id in &ids {
        assert!(
            !source.contains(id.as_str()),
            "{id} shown before signing in"
        );
    }
    assert!(b.find_all("#rows").await.is_empty());
    b.screenshot(&shots.join("signin.png")).await;
    b.type_into(&b.find("#token").await, "not-the-token").await;
    b.click_to_load(&b.find("form.signin button").await).await;
    b.find("#signin-error").await;
    assert!(b.find_all("#rows").await.is_empty());
    assert!(!b.source().await.contains("not-the-token"));
    b.type_into(&b.find("#token").await, TOKEN).await;
    b.click_to_load(&b.find("form.signin button").await).await;
    assert_eq!(b.current_url().await, format!("{base}/ui/services"));
    same_rows_as_the_api(&b, &run).await;
    b.quit().await;
    drop(driver);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_opens_with_the_consoles_url() {
    let dir = std::env::temp_dir().join(format!("sesinv-console-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    /// Kills the demo however the test ends.
    struct Demo(std::process::Child);
    impl Drop for Demo {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut demo = Demo(
        std::process::Command::new(env!("CARGO_BIN_EXE_ses-inventory"))
            .arg("demo")
            .current_dir(&dir)
            .env("NO_PROXY", "127.0.0.1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = demo.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Reads to the end: a closed pipe would fail the demo's next print.
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let _ = tx.send(lines.next().and_then(Result::ok).unwrap_or_default());
        for _ in lines {}
    });
    let line = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap();
    {
        let line = line.expect("the demo prints its start-up line within 30 s");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:") && w.ends_with('/'))
            .unwrap_or_else(|| panic!("no console URL in the first line: {line}"));
        assert!(line.contains("web console at"), "{line}");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = http.get(url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().await.unwrap().contains("<title>Overview"));
    }
    drop(demo);
    let _ = std::fs::remove_dir_all(&dir);
}
