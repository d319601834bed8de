//! The library's modules import each other in one direction: no cycle among the top-level
//! modules of `src/`, so each can be read, tested and changed from the bottom up.
//!
//! Read from the source text as rustfmt leaves it: every `crate::` path outside comments
//! and test code names the top-level module it depends on, directly or through a name the
//! crate root re-exports.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A top-level module and the top-level modules its non-test code names.
type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn the_library_modules_have_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph_of(&src);
    assert!(graph.len() > 10, "too few modules read: {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the modules {} import each other in a circle; move what closes it into a \
             module below them all",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn a_cycle_is_found_where_there_is_one() {
    let edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")];
    let mut graph = Graph::new();
    for (from, to) in edges {
        graph.entry(from.into()).or_default().insert(to.into());
    }
    let cycle = find_cycle(&graph).expect("a -> b -> c -> a");
    assert_eq!(cycle, ["a", "b", "c", "a"]);
    graph.get_mut("c").unwrap().remove("a");
    assert_eq!(find_cycle(&graph), None);
}

/// Which top-level module each module of `src` (the binaries left out) depends on.
fn graph_of(src: &Path) -> Graph {
    let root = fs::read_to_string(src.join("lib.rs")).unwrap();
    let modules = declared_modules(&root);
    let exported = reexports(&root, &modules);
    let files = rust_files(src);
    let texts: Vec<String> = files
        .iter()
        .map(|f| fs::read_to_string(f).unwrap())
        .collect();
    let test_files: BTreeSet<PathBuf> = files
        .iter()
        .zip(&texts)
        .flat_map(|(file, text)| test_modules(file, text))
        .collect();
    let mut graph = Graph::new();
    for (file, text) in files.iter().zip(&texts) {
        let relative = file.strip_prefix(src).unwrap();
        let Some(module) = top_module(relative) else {
            continue;
        };
        if test_files.contains(file) {
            continue;
        }
        let deps = graph.entry(module.clone()).or_default();
        for name in crate_paths(&without_tests(text)) {
            let target = if modules.contains(&name) {
                name
            } else if let Some(module) = exported.get(&name) {
                module.clone()
            } else {
                panic!("{}: `crate::{name}` names no module", relative.display());
            };
            if target != module {
                deps.insert(target);
            }
        }
    }
    graph
}

/// The module a file belongs to: `ring` for `ring/mod.rs` and `ring/producer.rs`, `bus`
/// for `bus.rs`; `None` for the crate root, the binaries and test-only modules.
fn top_module(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    match name {
        "lib" | "bin" | "test_support" => None,
        _ => Some(name.to_owned()),
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The files of the test-only modules that `file` declares (`#[cfg(test)] mod tests;`).
fn test_modules(file: &Path, text: &str) -> Vec<PathBuf> {
    let dir = match file.file_name().and_then(|name| name.to_str()) {
        Some("mod.rs" | "lib.rs") => file.parent().unwrap().to_path_buf(),
        _ => file.with_extension(""),
    };
    let mut found = Vec::new();
    let mut test_only = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("#[cfg(") {
            test_only |= line.contains("cfg(test") || line.contains("(test,");
            continue;
        }
        if line.starts_with("#[") {
            continue;
        }
        if test_only && let Some(name) = line.strip_prefix("mod ").and_then(|l| l.strip_suffix(';'))
        {
            found.push(dir.join(format!("{name}.rs")));
            found.push(dir.join(name).join("mod.rs"));
        }
        test_only = false;
    }
    found
}

/// The modules `lib.rs` declares.
fn declared_modules(root: &str) -> BTreeSet<String> {
    root.lines()
        .filter_map(|line| {
            let line = line.trim().strip_prefix("pub ").unwrap_or(line.trim());
            line.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_owned)
        })
        .collect()
}

/// Names the crate root re-exports, and the module each comes from.
fn reexports(root: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let text = without_comments(root);
    for statement in text.split(';') {
        let Some(path) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module = path.split("::").next().unwrap().trim().to_owned();
        assert!(
            modules.contains(&module),
            "`pub use {path}` is not a module's"
        );
        let rest = &path[module.len()..];
        let list = match (rest.find('{'), rest.rfind('}')) {
            (Some(open), Some(close)) => &rest[open + 1..close],
            _ => rest,
        };
        for item in list.split(',') {
            let name = item.rsplit("::").next().unwrap().trim();
            let name = name.rsplit(" as ").next().unwrap().trim();
            if !name.is_empty() {
                names.insert(name.to_owned(), module.clone());
            }
        }
    }
    names
}

/// `text` without its `//` comments (doc comments included: links there are no imports).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` without its comments and its test modules: a `#[cfg(test)]` (or a `cfg` naming
/// `test` among others) item, up to the closing brace rustfmt puts at its indentation.
fn without_tests(text: &str) -> String {
    let mut kept = Vec::new();
    let mut lines = without_comments(text)
        .lines()
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .into_iter();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let test_only = trimmed.starts_with("#[cfg(")
            && (trimmed.contains("cfg(test") || trimmed.contains("(test,"));
        if !test_only {
            kept.push(line);
            continue;
        }
        let indent = &line[..line.len() - trimmed.len()];
        for item in lines.by_ref() {
            let rest = item.trim_start();
            if rest.starts_with("#[") {
                continue;
            }
            // An item ends with its `;` (`mod tests;`), or a block with its brace.
            if item.trim_end().ends_with('{') {
                let close = format!("{indent}}}");
                lines.by_ref().find(|line| *line == close);
                break;
            }
            if item.trim_end().ends_with(';') {
                break;
            }
        }
    }
    kept.join("\n")
}

/// The first segment of every `crate::` path in `text`, those in `use crate::{a, b::c}`
/// groups included.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let end = group
                .find(|c| {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => return true,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    false
                })
                .unwrap_or(group.len());
            let mut depth = 0;
            for item in group[..end].split(|c| {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => return true,
                    _ => {}
                }
                false
            }) {
                names.extend(first_segment(item.trim()));
            }
        } else {
            names.extend(first_segment(rest));
        }
    }
    names
}

fn first_segment(path: &str) -> Option<String> {
    let end = path
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(path.len());
    (end > 0 && path[..end] != *"self").then(|| path[..end].to_owned())
}

/// One cycle of `graph`, as the modules along it with the first repeated at the end.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}
