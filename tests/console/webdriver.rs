//! A minimal WebDriver client (W3C protocol: JSON over HTTP) for the console's browser tests:
//! chromedriver on a free loopback port, driving Debian's headless Chromium. Only what the tests
//! use: sessions, navigation, elements, clicks, keys, text, attributes, screenshots, dialogs.
//! Every wait is bounded; chromedriver (and with it Chromium) is killed when the driver drops.

use base64::Engine;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An executable on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Chromium and chromedriver, when installed. Without them the browser tests are skipped with
/// a note, except in CI (`CI` set), where they must run (`.ci/run` installs them).
pub fn tools() -> Option<(PathBuf, PathBuf)> {
    let chromium = which("chromium").or_else(|| which("chromium-browser"));
    let driver = which("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var_os("CI").is_none() => {
            eprintln!(
                "note: browser tests skipped: no chromium/chromedriver \
                 (`apt-get install chromium chromium-driver`)"
            );
            None
        }
        _ => panic!(
            "CI is set but chromium or chromedriver is missing: \
             `apt-get install chromium chromium-driver`"
        ),
    }
}

/// A running chromedriver.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    chromium: PathBuf,
}

impl Drop for Driver {
    /// Kills chromedriver's process group: chromedriver and any browser it still runs.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let killed = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        if !killed.is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts chromedriver on a free loopback port and waits (at most 15 s) until it is ready.
    pub async fn start(chromium: PathBuf, chromedriver: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        // Its own process group, so that the browsers it starts go with it (see Drop).
        let child = Command::new(chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http,
            chromium,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .ok()
                .map(|r| r.json::<Value>());
            if let Some(body) = ready
                && body.await.ok().and_then(|v| v["value"]["ready"].as_bool()) == Some(true)
            {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless browser session.
    pub async fn session(&self) -> Browser {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-proxy-server", "--hide-scrollbars",
                         "--window-size=1100,800", "--force-device-scale-factor=1"],
            },
            "timeouts": {"pageLoad": 20000, "script": 5000, "implicit": 0},
        }}});
        let r = self
            .http
            .post(format!("{}/session", self.base))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers");
        let body: Value = r.json().await.unwrap();
        let id = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {body}"))
            .to_string();
        Browser {
            http: self.http.clone(),
            url: format!("{}/session/{id}", self.base),
            open: true,
        }
    }
}

/// One browser session, ended by [`Browser::quit`] or, when a test fails, on drop.
pub struct Browser {
    http: reqwest::Client,
    url: String,
    open: bool,
}

impl Drop for Browser {
    /// A test that panicked never reached `quit`: close the browser with a plain blocking
    /// `DELETE` (no runtime to await on while unwinding), at most 10 s.
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let Some((host, path)) = self
            .url
            .strip_prefix("http://")
            .and_then(|r| r.split_once('/'))
        else {
            return;
        };
        if let Ok(mut s) = std::net::TcpStream::connect(host) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = s.read_to_end(&mut Vec::new());
        }
    }
}

impl Browser {
    /// One command; `Err` carries the WebDriver error's `value`.
    async fn try_cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let url = format!("{}{path}", self.url);
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(&body.unwrap_or(json!({}))),
        };
        let r = request.send().await.expect("chromedriver answers");
        let ok = r.status().is_success();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(v["value"].clone())
        }
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_cmd(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    pub async fn current_url(&self) -> String {
        self.cmd("GET", "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The elements matching a CSS selector, in document order.
    pub async fn find_all(&self, css: &str) -> Vec<String> {
        let found = self
            .cmd(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_string())
            .collect()
    }

    /// The one element matching `css` (panics naming it when there is none).
    pub async fn find(&self, css: &str) -> String {
        let found = self
            .try_cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .unwrap_or_else(|e| panic!("no element `{css}`: {e}"));
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("`{css}`: not an element: {found}"))
            .to_string()
    }

    pub async fn click(&self, element: &str) {
        self.cmd("POST", &format!("/element/{element}/click"), None)
            .await;
    }

    /// Clicks something that loads a new page, and waits (at most 15 s) until the old page is
    /// gone: a click returns before the navigation it starts has replaced the document.
    pub async fn click_to_load(&self, element: &str) {
        let old = self.find("html").await;
        self.click(element).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        while self
            .try_cmd("GET", &format!("/element/{old}/name"), None)
            .await
            .is_ok()
        {
            assert!(
                Instant::now() < deadline,
                "the click loaded no page within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // Any command waits for the new document to finish loading.
        self.find("body").await;
    }

    pub async fn type_into(&self, element: &str, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        self.cmd(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn text(&self, element: &str) -> String {
        let v = self
            .cmd("GET", &format!("/element/{element}/text"), None)
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    pub async fn attribute(&self, element: &str, name: &str) -> Option<String> {
        let v = self
            .cmd("GET", &format!("/element/{element}/attribute/{name}"), None)
            .await;
        v.as_str().map(str::to_string)
    }

    /// The text of an open alert, confirm or prompt dialog; `None` when there is none.
    pub async fn dialog(&self) -> Option<String> {
        self.try_cmd("GET", "/alert/text", None)
            .await
            .ok()
            .map(|v| v.as_str().unwrap_or_default().to_string())
    }

    /// A PNG of the viewport, written to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let v = self.cmd("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    pub async fn quit(mut self) {
        let _ = self.try_cmd("DELETE", "", None).await;
        self.open = false;
    }
}
