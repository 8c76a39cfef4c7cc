//! The architecture, checked: the top-level modules of `src/` form layers, and a module imports
//! only from the layers below it — no cycle, no upward import (test code aside). A new top-level
//! module must be given its place in `LAYERS`. Inside a layer too, no two files import each
//! other, directly or round a circle. The layers are drawn in docs/ARCHITECTURE.md; this list is
//! the one copy of them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first.
const LAYERS: [&str; 12] = [
    "time",      // clock, backoff, times as text
    "model",     // the shared vocabulary: inventories, items, rows, poll reports, secrets
    "config",    // layered configuration
    "cache",     // the shared in-memory cache
    "telemetry", // events (log lines + metrics) and the metrics registry
    "source",    // the upstream HTTP client
    "sync",      // pollers: listings, confirmation, rules, window, the daemon's pollers
    "store",     // SQLite: schema, warm load, writer, export
    "mirror",    // NATS JetStream: key-value mirror, change stream, leader lease
    "serve",     // read API, web console, metrics exposition, systemd notify, status log
    "cmd",       // the commands and their composition root
    "fuzzing",   // the fuzz targets' checks (tests and the `fuzzing` feature only)
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

/// The code of a file without its comments and its `#[cfg(test)]` items (a `mod tests;` line,
/// or a module up to its closing brace; a file that is itself a test module is skipped whole).
fn product_code(file: &Path) -> String {
    if file.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(file).unwrap();
    let mut code = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            // The item it guards: one line ending in `;`, or up to its closing brace.
            let mut depth = 0i32;
            for item in lines.by_ref() {
                depth += item.matches('{').count() as i32 - item.matches('}').count() as i32;
                if depth <= 0 && (item.trim_end().ends_with(';') || item.trim_end().ends_with('}'))
                {
                    break;
                }
            }
            continue;
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
    let code = "#[cfg(test)]\nmod tests;\nuse crate::model::item::Key;\nuse crate::serve::api;\n// use crate::cmd::x;\n#[cfg(test)]\nmod tests {\n    use crate::cmd::demo;\n}\nuse crate::store::x;\n";
    let dir = std::env::temp_dir().join(format!("sesinv-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sample.rs");
    std::fs::write(&file, code).unwrap();
    let found = imports(&product_code(&file));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        [
            "model".to_string(),
            "serve".to_string(),
            "store".to_string()
        ]
    );
    assert!(imports("use ses_inventory_sim::Fault; my_crate::x::y;").is_empty());
}

/// A file's module path (`src/a/b.rs` and `src/a/b/mod.rs` are `[a, b]`; lib.rs and main.rs
/// are the crate's root, `[]`).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
    {
        parts.pop();
    }
    parts
}

/// The file of module `path`, if it has one of its own.
fn file_of(src: &Path, path: &[String]) -> Option<PathBuf> {
    if path.is_empty() {
        return Some(src.join("lib.rs"));
    }
    let joined: PathBuf = path.iter().collect();
    [
        src.join(&joined).with_extension("rs"),
        src.join(&joined).join("mod.rs"),
    ]
    .into_iter()
    .find(|f| f.is_file())
}

/// Every path a `use` tree names, braces expanded (`a::{b, c::{d, self}}` is `a::b`,
/// `a::c::d`, `a::c`).
fn use_paths(tree: &str) -> Vec<String> {
    // Renames (`a::b as c`) name `a::b`; then whitespace means nothing.
    let words: Vec<&str> = tree.split_whitespace().collect();
    let mut kept = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if words[i] == "as" {
            // Keep what follows the new name (`,` or `}`).
            if let Some(name) = words.get(i + 1) {
                kept.push(name.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'));
            }
            i += 2;
        } else {
            kept.push(words[i]);
            i += 1;
        }
    }
    let tree: String = kept.concat();
    let Some(open) = tree.find('{') else {
        return vec![tree.trim_end_matches("::").to_owned()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(use_paths)
        .map(|p| match p.as_str() {
            "self" => prefix.to_owned(),
            _ if prefix.is_empty() => p,
            _ => format!("{prefix}::{p}"),
        })
        .collect()
}

/// The files `file` imports from: the paths its `use` statements name (re-exports, `pub use`,
/// only rename and are left out) and the paths written out in its code, resolved to the
/// deepest module that has a file.
fn file_imports(src: &Path, file: &Path) -> BTreeSet<PathBuf> {
    let code = product_code(file);
    let own = module_path(src, file);
    let children: BTreeSet<String> = code
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l
                .strip_prefix("pub ")
                .or(l.strip_prefix("pub(crate) "))
                .unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect();
    let mut paths = Vec::new();
    let mut rest_of_code = String::new();
    for statement in code.split_inclusive(';') {
        let trimmed = statement.trim_start();
        if let Some(tree) = trimmed.strip_prefix("use ") {
            paths.extend(use_paths(tree.trim_end_matches(';')));
        } else if !trimmed.starts_with("pub use ") && !trimmed.starts_with("pub(crate) use ") {
            rest_of_code.push_str(statement);
        }
    }
    // Written-out paths: runs of name characters and `::` that hold a `::`.
    let mut token = String::new();
    for c in rest_of_code.chars().chain(std::iter::once(' ')) {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            token.push(c);
        } else {
            if token.contains("::") && !token.starts_with(':') {
                paths.push(token.trim_end_matches(':').to_owned());
            }
            token.clear();
        }
    }
    let mut found = BTreeSet::new();
    for path in paths {
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let (mut base, mut rest): (Vec<String>, &[&str]) = match segments.first() {
            Some(&"crate") => (Vec::new(), &segments[1..]),
            Some(&"self") => (own.clone(), &segments[1..]),
            Some(&"super") => (own.clone(), &segments[..]),
            Some(first) if children.contains(*first) => (own.clone(), &segments[..]),
            _ => continue,
        };
        while rest.first() == Some(&"super") {
            base.pop();
            rest = &rest[1..];
        }
        let mut target = None;
        for n in 0..=rest.len() {
            let mut module = base.clone();
            module.extend(rest[..n].iter().map(|s| s.to_string()));
            if let Some(f) = file_of(src, &module) {
                target = Some(f);
            }
        }
        if let Some(t) = target.filter(|t| t != file) {
            found.insert(t);
        }
    }
    found
}

/// A circle of imports between files, if there is one.
fn circle(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    fn visit(
        node: &PathBuf,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        done: &mut BTreeSet<PathBuf>,
        stack: &mut Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut circle = stack[at..].to_vec();
            circle.push(node.clone());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, done, stack) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut done, &mut Vec::new()))
}

#[test]
fn no_two_files_import_each_other_even_round_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = files
        .iter()
        .map(|f| (f.clone(), file_imports(&src, f)))
        .collect();
    // The check reads real imports: the read API's server imports its handlers.
    assert!(graph[&src.join("serve/server.rs")].contains(&src.join("serve/api.rs")));
    if let Some(c) = circle(&graph) {
        let names: Vec<String> = c
            .iter()
            .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
            .collect();
        panic!("an import circle between files: {}", names.join(" -> "));
    }
}

#[test]
fn the_circle_check_sees_a_circle_through_super_and_braces() {
    let dir = std::env::temp_dir().join(format!("sesinv-circle-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sync")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod sync;\n").unwrap();
    std::fs::write(
        src.join("sync/mod.rs"),
        "mod a;\nmod b;\npub use a::A;\nfn f() { b::g(); }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("sync/a.rs"),
        "use super::{b::{self, B as Bee}, C};\nuse super::lease as renamed;\n",
    )
    .unwrap();
    std::fs::write(src.join("sync/b.rs"), "fn g() { crate::sync::a::h(); }\n").unwrap();
    let files = ["lib.rs", "sync/mod.rs", "sync/a.rs", "sync/b.rs"].map(|f| src.join(f));
    let graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = files
        .iter()
        .map(|f| (f.clone(), file_imports(&src, f)))
        .collect();
    let found = circle(&graph);
    std::fs::remove_dir_all(&dir).unwrap();
    // a -> b (through braces), b -> a (a written-out path); mod.rs's `pub use` is no edge.
    let found = found.expect("a circle");
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found.iter().all(|f| f.starts_with(src.join("sync"))));
    assert!(!graph[&src.join("sync/mod.rs")].contains(&src.join("sync/a.rs")));
    assert!(graph[&src.join("sync/mod.rs")].contains(&src.join("sync/b.rs")));
    assert!(graph[&src.join("sync/a.rs")].contains(&src.join("sync/mod.rs")));
}
