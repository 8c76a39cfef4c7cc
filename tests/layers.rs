//! The architecture, checked: the top-level modules of `src/` form layers, and a module imports
//! only from the layers below it — no cycle, no upward import (test code aside). A new top-level
//! module must be given its place in `LAYERS`. The layers are drawn in docs/ARCHITECTURE.md.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Lowest first.
const LAYERS: [&str; 11] = [
    "model",     // the shared vocabulary: inventories, items, rows, poll reports, secrets
    "time",      // clock, backoff
    "config",    // layered configuration
    "cache",     // the shared in-memory cache
    "telemetry", // events (log lines + metrics) and the metrics registry
    "source",    // the upstream HTTP client
    "sync",      // pollers: listings, confirmation, rules, window, the daemon's pollers
    "store",     // SQLite: schema, warm load, writer, export
    "mirror",    // NATS JetStream: key-value mirror, change stream, leader lease
    "serve",     // read API, web console, metrics exposition, systemd notify, status log
    "cmd",       // the commands and their composition root
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for lib.rs and main.rs).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
    (name != "lib" && name != "main").then_some(name)
}

/// The code of a file without its comments and its `#[cfg(test)]` module (kept at the end of
/// files by convention; a file that is itself a test module is skipped whole).
fn product_code(file: &Path) -> String {
    if file.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(file).unwrap();
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// The top-level modules `code` names through `crate::`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let before = rest[..at].chars().last();
        // `ses_inventory_sim::` and similar names that end in "crate" are not paths of this crate.
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
        rest = after;
    }
    found
}

#[test]
fn modules_import_only_from_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let layer = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut problems = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let Some(own) = layer(&module) else {
            problems.push(format!(
                "{}: top-level module `{module}` has no place in LAYERS",
                file.display()
            ));
            continue;
        };
        for dep in imports(&product_code(file)) {
            if dep == module || dep == "Inventory" {
                // `crate::Inventory` is the lib's re-export of model::inventory::Inventory.
                continue;
            }
            match layer(&dep) {
                Some(d) if d < own => {}
                Some(_) => problems.push(format!(
                    "{}: `{module}` imports `crate::{dep}`, which is not below it",
                    file.display()
                )),
                None => problems.push(format!(
                    "{}: imports `crate::{dep}`, unknown to LAYERS",
                    file.display()
                )),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import_and_ignores_test_code() {
    let code = "use crate::model::item::Key;\nuse crate::serve::api;\n// use crate::cmd::x;\n#[cfg(test)]\nmod tests { use crate::cmd::demo; }\n";
    let dir = std::env::temp_dir().join(format!("sesinv-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sample.rs");
    std::fs::write(&file, code).unwrap();
    let found = imports(&product_code(&file));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["model".to_string(), "serve".to_string()]
    );
    assert!(imports("use ses_inventory_sim::Fault; my_crate::x::y;").is_empty());
}
