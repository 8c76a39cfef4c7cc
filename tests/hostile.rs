//! Bodies hostile by size, read by the real binary (`sync-once`) from the simulator or from a
//! raw socket on loopback: one 50 MB string, a million empty objects, arrays nested 100,000
//! deep, and a 1 GB `Content-Length` whose bytes never come. Each ends in the data or in a clear
//! error, and the process's peak resident memory (its own `ru_maxrss`, read by `wait4`) stays
//! within a small multiple of what it was given.
//!
//! One test, its cases in turn: the peaks are per child process, so nothing else of this binary
//! runs beside them.

mod common;

use common::*;
use serde_json::Value;
use ses_inventory::Inventory::{Carriers, Resources, Services};
use ses_inventory_sim::{Fault, FaultKind, SimConfig, Simulator};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const MIB: u64 = 1 << 20;

/// What a `sync-once` printed and how much memory it held at its peak.
struct Run {
    ok: bool,
    summary: Value,
    stderr: String,
    peak: u64,
}

/// Runs `c` to its end and reads its peak resident set from the kernel (`wait4`'s rusage), so
/// that no other process of the test counts.
fn run(mut c: Command) -> Run {
    // Forked, not spawned with a shared address space (what std does without a `pre_exec`):
    // a child that shares the test's memory until its exec would inherit the test's own peak
    // as its starting `ru_maxrss`; a forked one starts from the test's current size only.
    // SAFETY: the closure does nothing, so it is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| Ok(()));
    }
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        err.read_to_string(&mut text).unwrap();
        text
    });
    let mut stdout = Vec::new();
    out.read_to_end(&mut stdout).unwrap();
    let stderr = reader.join().unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for this child alone.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: waits for our own child, which std has not reaped (we never call `wait` on it).
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    std::mem::forget(child);
    Run {
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        summary: serde_json::from_slice(&stdout).unwrap_or(Value::Null),
        stderr,
        peak: u64::try_from(usage.ru_maxrss).unwrap() * 1024,
    }
}

fn sync_once(sim: &Simulator, sc: &SimConfig, env: &[(&str, &str)]) -> Run {
    let mut c = binary(sim, sc);
    c.arg("sync-once").envs(env.iter().copied());
    run(c)
}

/// A full first page of services whose last one nests arrays `depth` deep:
/// `[{…}, …, {"externalId":"SVC-DEEP",…,"x":[[[…]]]}]`.
fn page_with_a_deep_item(depth: usize) -> Vec<u8> {
    let mut body = b"[".to_vec();
    for i in 1..40 {
        body.extend(
            service(&format!("SVC-P{i:03}"), "Operational")
                .to_string()
                .bytes(),
        );
        body.push(b',');
    }
    let deep = service("SVC-DEEP", "Operational").to_string();
    body.extend(deep[..deep.len() - 1].bytes());
    body.extend(br#","x":"#);
    body.extend(std::iter::repeat_n(b'[', depth));
    body.extend(std::iter::repeat_n(b']', depth));
    body.extend(b"}]");
    body
}

/// A million `{}`: three bytes an element, none with a key.
fn empty_objects(n: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(3 * n + 2);
    body.push(b'[');
    for i in 0..n {
        if i > 0 {
            body.push(b',');
        }
        body.extend(b"{}");
    }
    body.push(b']');
    body
}

/// A server on loopback that answers every request with `200`, `Content-Length: 1 GiB` and two
/// bytes, then holds the connection open, sending nothing more, until the test ends.
fn never_ending_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                      Content-Length: 1073741824\r\n\r\n[{",
                );
                // Held (bounded): the client gives up first, by its timeout or its limit.
                std::thread::sleep(Duration::from_secs(60));
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_bodies_end_in_data_or_a_clear_error_within_bounded_memory() {
    let (sim, sc) = empty_sim().await;
    sim.set_items(Services, services(100));
    sim.set_items(Carriers, vec![carrier("C-1")]);
    sim.set_items(Resources, vec![resource("R-1", "Antenna")]);
    let (sim, sc) = (Arc::new(sim), Arc::new(sc));
    let blocking = |f: Box<dyn FnOnce() -> Run + Send>| tokio::task::spawn_blocking(f);

    // The same data, nothing hostile: the yardstick.
    let (s, c) = (sim.clone(), sc.clone());
    let base = blocking(Box::new(move || sync_once(&s, &c, &[])))
        .await
        .unwrap();
    assert!(base.ok, "{}", base.stderr);
    assert_eq!(base.summary["services"]["kept"], 100);
    eprintln!("baseline peak: {} MiB", base.peak / MIB);

    // A `Content-Length` of 1 GiB whose bytes never come. Within the default limit (64 MiB):
    // refused from the header, naming the key. With the limit raised past it: the request's
    // timeout ends it, and nothing is reserved for the bytes announced.
    let never = never_ending_server();
    let endpoint = format!("http://{never}/tmf638");
    let (s, c, e) = (sim.clone(), sc.clone(), endpoint.clone());
    let refused = blocking(Box::new(move || {
        sync_once(&s, &c, &[("SES_INVENTORY__TMF638__ENDPOINT", &e)])
    }))
    .await
    .unwrap();
    assert!(!refused.ok);
    let error = refused.summary["services"]["error"].as_str().unwrap_or("");
    assert!(error.contains("max_body_bytes"), "{}", refused.summary);
    let (s, c) = (sim.clone(), sc.clone());
    let waited = blocking(Box::new(move || {
        sync_once(
            &s,
            &c,
            &[
                ("SES_INVENTORY__TMF638__ENDPOINT", &endpoint),
                ("SES_INVENTORY__HTTP__MAX_BODY_BYTES", "4294967296"),
                ("SES_INVENTORY__HTTP__TIMEOUT", "2"),
                ("SES_INVENTORY__HTTP__RETRY_ATTEMPTS", "2"),
            ],
        )
    }))
    .await
    .unwrap();
    eprintln!(
        "1 GiB announced, never sent: peak {} MiB",
        waited.peak / MIB
    );
    assert!(!waited.ok);
    let error = waited.summary["services"]["error"].as_str().unwrap_or("");
    assert!(
        error.contains("timed out") || error.contains("timeout"),
        "{}",
        waited.summary
    );
    assert_eq!(waited.summary["resources"]["outcome"], "complete");
    assert!(
        waited.peak.saturating_sub(base.peak) < 64 * MIB,
        "peak {} MiB waiting for bytes that never came",
        waited.peak / MIB
    );

    // An item nesting arrays 100,000 deep on a full page: not taken (skipped as `too_deep`,
    // since every reader of an item's JSON as a tree recurses), the rest of the page is.
    sim.inject(Fault::on(
        Services,
        Some(1),
        FaultKind::Body(page_with_a_deep_item(100_000).into()),
        None,
    ));
    let (s, c) = (sim.clone(), sc.clone());
    let deep = blocking(Box::new(move || sync_once(&s, &c, &[])))
        .await
        .unwrap();
    assert!(deep.ok, "{}", deep.stderr);
    eprintln!("100,000 deep: peak {} MiB", deep.peak / MIB);
    let listed = &deep.summary["services"];
    assert_eq!(listed["skipped"]["too_deep"], 1, "{listed}");
    assert_eq!(listed["outcome"], "complete", "{listed}");
    // Page 1's 39 other services and the simulator's 60 on later pages.
    assert_eq!(listed["kept"], 99, "{listed}");
    assert!(
        deep.peak.saturating_sub(base.peak) < 128 * MIB,
        "peak {} MiB for a 200 kB page",
        deep.peak / MIB
    );
    sim.clear_faults();

    // A first page of a million empty objects: each skipped for having no key, the pass goes on.
    let n = 1_000_000;
    sim.inject(Fault::on(
        Services,
        Some(1),
        FaultKind::Body(empty_objects(n).into()),
        Some(1),
    ));
    let (s, c) = (sim.clone(), sc.clone());
    let empties = blocking(Box::new(move || sync_once(&s, &c, &[])))
        .await
        .unwrap();
    eprintln!("a million empty objects: peak {} MiB", empties.peak / MIB);
    assert_eq!(
        empties.summary["services"]["skipped_items"], n,
        "{}",
        empties.stderr
    );
    assert!(
        empties.peak.saturating_sub(base.peak) < 256 * MIB,
        "peak {} MiB for a 3 MB page",
        empties.peak / MIB
    );
    sim.clear_faults();

    // One service whose description is a 50 MB string: cached whole, stored whole.
    let dir = std::env::temp_dir().join(format!("ses-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("store.db");
    let mut items = services(99);
    let mut big = service("SVC-BIG", "Operational");
    let size = 50_000_000;
    big["description"] = Value::String("d".repeat(size));
    items.push(big);
    sim.set_items(Services, items);
    let (s, c, path) = (sim.clone(), sc.clone(), store.display().to_string());
    let large = blocking(Box::new(move || {
        sync_once(&s, &c, &[("SES_INVENTORY__STORE__PATH", &path)])
    }))
    .await
    .unwrap();
    assert!(large.ok, "{}", large.stderr);
    assert_eq!(large.summary["services"]["kept"], 100, "{}", large.summary);
    let grew = large.peak.saturating_sub(base.peak);
    eprintln!(
        "50 MB string: peak {} MiB (+{} MiB over the baseline)",
        large.peak / MIB,
        grew / MIB
    );
    // The body, the page's text and the cached item each hold it once; the store's row is
    // compressed. Anything near ten copies would be a leak or a copy too many per layer.
    assert!(
        grew < 10 * size as u64,
        "peak grew by {} MiB for a 50 MB string",
        grew / MIB
    );
    let export = std::process::Command::new(env!("CARGO_BIN_EXE_ses-inventory"))
        .args(["export", "services", "--format", "ndjson"])
        .env("SES_INVENTORY_CONFIG", "")
        .env("SES_INVENTORY__STORE__PATH", &store)
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", text(&export.stderr));
    let stored = text(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|row| row["id"] == "SVC-BIG")
        .expect("the big service is in the store");
    assert_eq!(stored["description"].as_str().map(str::len), Some(size));
    std::fs::remove_dir_all(&dir).ok();
    sim.set_items(Services, services(100));
}

/// A new version of a cached item that nests too deep is not taken: the item keeps the version
/// it had (still served whole by the API), is not missed, and the report counts the refusal.
#[tokio::test]
async fn a_too_deep_new_version_leaves_the_cached_one_in_place() {
    let (sim, sc) = empty_sim().await;
    sim.set_items(Services, services(3));
    let cfg = config(&sim, &sc);
    let cache = ses_inventory::cache::Cache::new();
    let first = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(first.added, 3);
    let before = cache.get(Services, "SVC-0002").unwrap();

    let mut deep = sim.items(Services)[1].clone();
    let nested: String = "[".repeat(200) + &"]".repeat(200);
    deep["x"] = serde_json::from_str::<Value>("[]").unwrap();
    let text = deep
        .to_string()
        .replace(r#""x":[]"#, &format!(r#""x":{nested}"#));
    let mut page = sim.items(Services);
    page[1] = Value::Null; // replaced below by the raw text
    let body = serde_json::to_string(&page)
        .unwrap()
        .replacen("null", &text, 1);
    sim.inject(Fault::on(
        Services,
        Some(1),
        FaultKind::Body(body.into_bytes().into()),
        None,
    ));
    let second = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(second.skipped.too_deep, 1, "{second:?}");
    assert_eq!((second.updated, second.removed), (0, 0), "{second:?}");
    let after = cache.get(Services, "SVC-0002").unwrap();
    assert_eq!(after.raw(), before.raw(), "the cached version stays");
    assert!(after.json().is_object());
    assert!(cache.awaiting(Services).is_empty(), "seen, so not missed");
}
