//! The dependency rule of docs/ARCHITECTURE.md, checked on the source text:
//! - a dialect (a folder under `src/api/` other than `http/`) names neither
//!   `crate::state` nor `crate::source`: it goes through `crate::services`;
//! - the top-level modules (`src/<name>.rs` with `src/<name>/`) import each
//!   other without a circle.
//!
//! Both read every `crate::<module>` path outside comments, whether in a
//! `use` or written inline (a name the crate root re-exports counts as its
//! module: `crate::validate` is `validation`), so a failure names the file
//! and line to fix. The graph leaves out unit tests (`#[cfg(test)] mod`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Import pairs allowed to form a circle for now, each with why. Empty:
/// `design` <-> `render`, allowed until h11-design merged, is gone (a pair
/// added here must say which change removes it).
const ALLOWED_CIRCLES: &[(&str, &str)] = &[];

/// Modules a dialect must not name.
const FORBIDDEN_IN_DIALECTS: &[&str] = &["state", "source"];

/// The shared HTTP machinery under `src/api/`, which is not a dialect.
const HTTP_LAYER: &str = "http";

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("a directory entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The top-level module a file under `src/` belongs to (`None`: the crate
/// root and the binary's files).
fn top_level(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    match name {
        "lib" | "main" | "cli" => None,
        n => Some(n.to_string()),
    }
}

/// The code of a line without its comment (`//`, `///`, `//!`); string
/// contents are kept, which is harmless for `crate::` paths.
fn code(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Every `crate::<name>` a line of code names, with the names inside a
/// `crate::{a, b::c}` group.
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code(line);
    while let Some(i) = rest.find("crate::") {
        // `slipway_crate::` or `$crate::` are not this crate's paths.
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

/// (file, line number, text) of every line of `file`.
fn lines(file: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

/// The lines of `file` before its unit tests (a `#[cfg(test)]` followed by
/// a `mod`): a test may build what it checks from modules above it (e.g.
/// `crate::validate`), which is no dependency of the library.
fn library_lines(file: &Path) -> Vec<(usize, String)> {
    let all = lines(file);
    let end = all
        .windows(2)
        .position(|w| w[0].1.trim() == "#[cfg(test)]" && w[1].1.trim_start().starts_with("mod "))
        .unwrap_or(all.len());
    all.into_iter().take(end).collect()
}

fn shown(file: &Path) -> String {
    file.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap_or(file)
        .display()
        .to_string()
}

/// Whether a file is part of a dialect: `src/api/<d>.rs` or under
/// `src/api/<d>/`, for any `<d>` but the HTTP layer.
fn is_dialect(file: &Path) -> bool {
    let Ok(rel) = file.strip_prefix(src().join("api")) else {
        return false;
    };
    let first = rel
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or("");
    let name = first.strip_suffix(".rs").unwrap_or(first);
    name != HTTP_LAYER
}

#[test]
fn dialects_reach_state_and_source_only_through_the_services() {
    let mut offences = Vec::new();
    let mut dialect_files = 0;
    for file in rust_files(&src().join("api")) {
        if !is_dialect(&file) {
            continue;
        }
        dialect_files += 1;
        for (n, line) in lines(&file) {
            for m in crate_paths(&line) {
                if FORBIDDEN_IN_DIALECTS.contains(&m.as_str()) {
                    offences.push(format!(
                        "{}:{n}: a dialect names crate::{m} (use crate::services): {}",
                        shown(&file),
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(dialect_files > 0, "no dialect found under src/api/");
    assert!(offences.is_empty(), "\n{}", offences.join("\n"));
}

/// Names the crate root re-exports (`pub use validation::{validate, ..};`
/// in lib.rs), to the module they come from: `crate::validate` names
/// `validation`.
fn root_reexports() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("src/lib.rs");
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = code(line).trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.trim_end_matches(';').split_once("::") else {
            continue;
        };
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = name.trim();
            let name = name.rsplit(" as ").next().unwrap_or(name).trim();
            if !name.is_empty() {
                out.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    out
}

/// module -> module it names -> where (first file:line).
fn import_graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let modules: BTreeSet<String> = rust_files(&src())
        .iter()
        .filter_map(|f| top_level(f))
        .collect();
    let reexports = root_reexports();
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in rust_files(&src()) {
        let Some(from) = top_level(&file) else {
            continue;
        };
        let edges = graph.entry(from.clone()).or_default();
        for (n, line) in library_lines(&file) {
            for to in crate_paths(&line) {
                let to = reexports.get(&to).cloned().unwrap_or(to);
                if to != from && modules.contains(&to) {
                    edges
                        .entry(to)
                        .or_insert_with(|| format!("{}:{n}", shown(&file)));
                }
            }
        }
    }
    graph
}

/// Every elementary circle found by a depth-first search, as the modules
/// along it (the first repeated at the end).
fn circles(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut c = path[i..].to_vec();
            c.push(node.to_string());
            found.push(c);
            return;
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            visit(next, graph, path, done, found);
        }
        path.pop();
        done.insert(node.to_string());
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for start in graph.keys() {
        visit(start, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

/// Whether a circle is exactly one allowed pair.
fn allowed(circle: &[String]) -> bool {
    circle.len() == 3
        && ALLOWED_CIRCLES.iter().any(|(a, b)| {
            (circle[0] == *a && circle[1] == *b) || (circle[0] == *b && circle[1] == *a)
        })
}

#[test]
fn top_level_modules_import_each_other_without_a_circle() {
    let mut graph = import_graph();
    // An allowed pair is cut before searching, so a longer circle through
    // it still shows.
    for (a, b) in ALLOWED_CIRCLES {
        let both = graph.get(*a).is_some_and(|e| e.contains_key(*b))
            && graph.get(*b).is_some_and(|e| e.contains_key(*a));
        if both {
            graph.get_mut(*b).map(|e| e.remove(*a));
        }
    }
    let bad: Vec<String> = circles(&graph)
        .into_iter()
        .filter(|c| !allowed(c))
        .map(|c| {
            let steps: Vec<String> = c
                .windows(2)
                .map(|w| format!("{} -> {} ({})", w[0], w[1], graph[&w[0]][&w[1]]))
                .collect();
            format!("circle {}: {}", c.join(" -> "), steps.join("; "))
        })
        .collect();
    assert!(bad.is_empty(), "\n{}", bad.join("\n"));
}

#[test]
fn the_reconcile_loop_does_not_import_the_api() {
    let graph = import_graph();
    let edges = graph.get("reconcile").cloned().unwrap_or_default();
    for m in ["api", "server"] {
        assert!(
            !edges.contains_key(m),
            "reconcile names crate::{m} at {}",
            edges[m]
        );
    }
}

#[test]
fn the_checker_sees_paths_in_uses_groups_and_code_but_not_comments() {
    assert_eq!(crate_paths("use crate::state::Store;"), ["state"]);
    assert_eq!(
        crate_paths("use crate::{state, source::Repo};"),
        ["state", "source"]
    );
    assert_eq!(
        crate_paths("    let s = crate::state::Store::open(p); // crate::api"),
        ["state"]
    );
    assert!(crate_paths("/// see [`crate::state`]").is_empty());
    assert!(crate_paths("$crate::state").is_empty());
    assert_eq!(
        root_reexports().get("validate").map(String::as_str),
        Some("validation")
    );
}
