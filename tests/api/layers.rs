//! The layer map, checked from the source: every `crate::`, `super::` and `self::` path in
//! src/ is resolved to the module (file) it names, and
//! - no two sibling modules import each other, directly or round a longer loop, at any depth
//!   (a parent and its own children are one unit: a child using its parent's types is how a
//!   Rust module is split into files, not a cycle);
//! - each layer imports only the layers lib.rs's map allows it.
//!
//! A static check like packaging.rs: it reads files, it starts no service.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path, e.g. ["engine", "gate", "check"]; [] is the crate root.
type Module = Vec<String>;

/// What each layer may import (lib.rs, "The dependency rule"). `startup` and `main.rs` wire
/// everything and may import anything.
const ALLOWED: [(&str, &[&str]); 9] = [
    ("domain", &[]),
    ("telemetry", &[]),
    ("scoring", &["domain"]),
    ("store", &["domain"]),
    ("embedding", &["domain"]),
    ("auth", &["domain"]),
    ("engine", &["domain", "scoring", "embedding", "store"]),
    (
        "grpc",
        &["domain", "engine", "scoring", "embedding", "store", "auth"],
    ),
    (
        "config",
        &[
            "domain",
            "scoring",
            "embedding",
            "store",
            "engine",
            "grpc",
            "auth",
            "telemetry",
        ],
    ),
];

/// The layer that wires the others together.
const WIRING: &str = "startup";

/// Every module of src/ and its source without comments.
fn modules() -> BTreeMap<Module, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap().with_extension("");
            let mut module: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] {
                module.clear();
            }
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            let code: String = text
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            out.entry(module)
                .and_modify(|c: &mut String| c.push_str(&code))
                .or_insert(code);
        }
    }
    out
}

/// Expands a path that may hold brace groups (`crate::a::{b, c::{d, e}}`) into plain paths.
fn expand(path: &str) -> Vec<String> {
    let Some(open) = path.find('{') else {
        return vec![path.trim().to_owned()];
    };
    let close = path.rfind('}').unwrap_or(path.len());
    let prefix = &path[..open];
    let inner = &path[open + 1..close.max(open + 1)];
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
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .flat_map(|p| {
            let p = if p == "self" { "" } else { p };
            expand(&format!("{prefix}{p}"))
        })
        .collect()
}

/// The paths a module names that start at `crate`, `super` or `self`, resolved from `from`.
fn named_paths(from: &Module, code: &str) -> Vec<Module> {
    let path = regex::Regex::new(r"\b(crate|super|self)((?:::(?:\w+|\{[^;]*?\}))+)").unwrap();
    let mut out = Vec::new();
    for found in path.captures_iter(code) {
        let whole = format!("{}{}", &found[1], &found[2]);
        for plain in expand(&whole) {
            let mut resolved: Module = Vec::new();
            let mut first = true;
            for segment in plain.split("::").map(str::trim).filter(|s| !s.is_empty()) {
                match (first, segment) {
                    (true, "crate") => {}
                    (true, "self") => resolved = from.clone(),
                    (true, "super") => {
                        resolved = from.clone();
                        resolved.pop();
                    }
                    (false, "super") => {
                        resolved.pop();
                    }
                    (_, s) => resolved.push(s.split_whitespace().next().unwrap_or(s).to_owned()),
                }
                first = false;
            }
            out.push(resolved);
        }
    }
    out
}

/// The deepest module that `path` lies in.
fn owner(path: &[String], modules: &BTreeMap<Module, String>) -> Module {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains_key(m))
        .unwrap_or_default()
}

/// Module `a` imports module `b`, neither inside the other.
fn edges(modules: &BTreeMap<Module, String>) -> BTreeSet<(Module, Module)> {
    let mut out = BTreeSet::new();
    for (from, code) in modules {
        for path in named_paths(from, code) {
            let to = owner(&path, modules);
            if !to.starts_with(from) && !from.starts_with(&to) {
                out.insert((from.clone(), to));
            }
        }
    }
    out
}

/// A loop in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
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
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let modules = modules();
    assert!(
        modules.contains_key(&vec!["engine".to_owned(), "gate".to_owned()]),
        "the walk found the modules"
    );
    let edges = edges(&modules);
    assert!(
        edges.len() > 30,
        "the paths were read: only {} edges",
        edges.len()
    );
    // Each edge seen among the siblings under the two modules' common parent.
    let mut by_parent: BTreeMap<Module, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (from, to) in &edges {
        let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
        let parent = from[..common].to_vec();
        by_parent
            .entry(parent)
            .or_default()
            .entry(from[common].clone())
            .or_default()
            .insert(to[common].clone());
    }
    let cycles: Vec<String> = by_parent
        .iter()
        .filter_map(|(parent, graph)| {
            find_cycle(graph)
                .map(|c| format!("under crate::{}: {}", parent.join("::"), c.join(" -> ")))
        })
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn each_layer_imports_only_what_the_layer_map_allows() {
    let modules = modules();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.into_iter().collect();
    let mut refused = Vec::new();
    let mut layers = BTreeSet::new();
    for (from, to) in edges(&modules) {
        let (Some(a), Some(b)) = (from.first(), to.first()) else {
            continue;
        };
        layers.insert(a.clone());
        if a == b || a == WIRING {
            continue;
        }
        match allowed.get(a.as_str()) {
            Some(may) if may.contains(&b.as_str()) => {}
            Some(_) => refused.push(format!("{} imports {}", from.join("::"), to.join("::"))),
            None => refused.push(format!("{a} is not in the layer map")),
        }
    }
    for layer in ALLOWED.map(|(layer, _)| layer).into_iter().chain([WIRING]) {
        assert!(
            modules.contains_key(&vec![layer.to_owned()]),
            "the layer map names {layer}, which src/ does not have"
        );
    }
    assert!(refused.is_empty(), "{}", refused.join("\n"));
}
