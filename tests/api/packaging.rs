//! Static checks of the Helm chart and the Dockerfile (no helm binary or Docker engine here):
//! every template's YAML parses once its actions are substituted, every value is documented
//! with an `## @param` line and checked by values.schema.json, every template reference names
//! an existing value, the alerts and the dashboard use only metrics the service exports, and
//! the image runs non-root with an exec-form entrypoint.

use std::collections::BTreeSet;
use std::path::Path;

use serde_norway::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// Every path of the values tree: maps are walked, anything else is a leaf.
fn paths(value: &Value, prefix: &str, all: &mut BTreeSet<String>, leaves: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = k.as_str().expect("string keys");
                let path = if prefix.is_empty() {
                    key.to_owned()
                } else {
                    format!("{prefix}.{key}")
                };
                all.insert(path.clone());
                paths(v, &path, all, leaves);
            }
        }
        _ => {
            leaves.insert(prefix.to_owned());
        }
    }
}

#[test]
fn chart_yaml_parses_and_names_the_chart() {
    let chart: Value = serde_norway::from_str(&read("helm/pertinent/Chart.yaml")).unwrap();
    assert_eq!(chart["apiVersion"].as_str(), Some("v2"));
    assert_eq!(chart["name"].as_str(), Some("pertinent"));
    assert!(chart["version"].as_str().is_some() && chart["appVersion"].as_str().is_some());
}

#[test]
fn every_value_is_documented_and_every_reference_exists() {
    let text = read("helm/pertinent/values.yaml");
    let values: Value = serde_norway::from_str(&text).unwrap();
    let (mut all, mut leaves) = (BTreeSet::new(), BTreeSet::new());
    paths(&values, "", &mut all, &mut leaves);
    let documented: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("## @param "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    for leaf in &leaves {
        assert!(
            documented.contains(leaf),
            "values.yaml: {leaf} has no ## @param line"
        );
    }
    for doc in &documented {
        assert!(
            all.contains(doc),
            "values.yaml documents {doc}, which does not exist"
        );
    }

    let mut referenced = 0;
    for (name, body) in templates() {
        for (i, _) in body.match_indices(".Values.") {
            let rest = &body[i + ".Values.".len()..];
            let reference: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '_')
                .collect();
            let reference = reference.trim_end_matches('.');
            referenced += 1;
            assert!(
                all.contains(reference),
                "{name} references .Values.{reference}, which values.yaml does not define"
            );
        }
        // Template actions must balance, or helm would fail to parse the file.
        assert_eq!(
            body.matches("{{").count(),
            body.matches("}}").count(),
            "{name}: unbalanced braces"
        );
    }
    assert!(
        referenced > 30,
        "the templates reference too few values to be real"
    );
}

/// Every file under templates/ (tests/ included): its path there, and its text.
fn templates() -> Vec<(String, String)> {
    let base = root().join("helm/pertinent/templates");
    let mut out = Vec::new();
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path
                .strip_prefix(&base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out.sort();
    out
}

/// A template with its actions substituted, as far as YAML is concerned: a line that is only
/// an action is dropped (control flow) or, when it inserts YAML at an indent (`nindent N`),
/// becomes a placeholder entry at that indent; an action inside a line becomes `x`. Both
/// branches of an `if` stay, which YAML accepts as long as each is well formed.
fn substituted(body: &str) -> String {
    let action = regex::Regex::new(r"\{\{-?.*?-?\}\}").unwrap();
    let nindent = regex::Regex::new(r"nindent (\d+)").unwrap();
    let mut out = String::new();
    let mut emitted: Vec<String> = Vec::new();
    for (n, line) in body.lines().enumerate() {
        let trimmed = line.trim();
        let item = trimmed.strip_prefix("- ").unwrap_or(trimmed);
        let only_action =
            item.starts_with("{{") && item.ends_with("}}") && action.find_iter(item).count() == 1;
        if only_action {
            if let Some(indent) = nindent.captures(item) {
                let indent: usize = indent[1].parse().unwrap();
                // Among sequence items (an `env:` list, say), what is inserted is items too.
                let in_sequence = emitted
                    .iter()
                    .rev()
                    .find(|l| l.len() - l.trim_start().len() <= indent && !l.trim().is_empty())
                    .is_some_and(|l| {
                        l.len() - l.trim_start().len() == indent && l.trim_start().starts_with("- ")
                    });
                let placeholder = if item.len() != trimmed.len() {
                    let dash = line.len() - trimmed.len();
                    format!("{}- placeholder{n}: x", " ".repeat(dash))
                } else if in_sequence {
                    format!("{}- placeholder{n}: x", " ".repeat(indent))
                } else {
                    format!("{}placeholder{n}: x", " ".repeat(indent))
                };
                emitted.push(placeholder);
            }
            continue;
        }
        emitted.push(action.replace_all(line, "x").into_owned());
    }
    for line in emitted {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn every_template_is_well_formed_yaml_of_a_kubernetes_object() {
    let mut objects = 0;
    for (name, body) in templates() {
        if name.ends_with(".tpl") || name.ends_with(".txt") {
            continue;
        }
        let yaml = substituted(&body);
        let object: Value = serde_norway::from_str(&yaml)
            .unwrap_or_else(|e| panic!("{name} is not YAML once substituted: {e}\n{yaml}"));
        for field in ["apiVersion", "kind"] {
            assert!(object[field].as_str().is_some(), "{name} has no {field}");
        }
        assert!(
            object["metadata"]["name"].as_str().is_some(),
            "{name} has no metadata.name"
        );
        objects += 1;
    }
    assert!(objects >= 12, "only {objects} objects");
}

#[test]
fn values_schema_accepts_the_values_and_refuses_what_would_break_the_chart() {
    let schema: serde_json::Value =
        serde_json::from_str(&read("helm/pertinent/values.schema.json")).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let values: serde_json::Value =
        serde_norway::from_str(&read("helm/pertinent/values.yaml")).expect("values.yaml");
    let errors: Vec<String> = validator
        .iter_errors(&values)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "values.yaml fails its schema: {errors:?}"
    );
    let wrong = |pointer: &str, value: serde_json::Value| {
        let mut v = values.clone();
        *v.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer}")) = value;
        v
    };
    let typo = {
        let mut v = values.clone();
        v["metrics"]["prot"] = serde_json::json!(9090);
        v
    };
    for (what, bad) in [
        ("no replicas", wrong("/replicaCount", serde_json::json!(0))),
        (
            "a port as text",
            wrong("/service/port", serde_json::json!("50051")),
        ),
        (
            "an unknown record mode",
            wrong("/config/recordDecisions", serde_json::json!("some")),
        ),
        (
            "a threshold over 1",
            wrong("/config/sendThreshold", serde_json::json!("1.5")),
        ),
        ("a misspelt key", typo),
    ] {
        assert!(!validator.is_valid(&bad), "the schema accepts {what}");
    }
}

#[test]
fn the_alerts_and_the_dashboard_use_only_metrics_the_service_exports() {
    let exported = {
        let mut names = BTreeSet::new();
        let metric =
            regex::Regex::new(r#"(?:counter|gauge|histogram)!\(\s*"(pertinent_[a-z_]+)""#).unwrap();
        let mut stack = vec![root().join("src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    names.extend(metric.captures_iter(&text).map(|c| c[1].to_owned()));
                }
            }
        }
        names
    };
    assert!(
        exported.len() >= 15,
        "only {} metrics found in src/",
        exported.len()
    );
    let operations = read("docs/operations.md");
    for name in &exported {
        assert!(
            operations.contains(name.as_str()),
            "docs/operations.md does not list {name}"
        );
    }
    let used = regex::Regex::new(r"(pertinent_[a-z_]+?)(_bucket|_sum|_count)?\b").unwrap();
    for file in [
        "helm/pertinent/templates/prometheusrule.yaml",
        "helm/pertinent/dashboards/pertinent.json",
    ] {
        let text = read(file);
        let mut seen = 0;
        for c in used.captures_iter(&text) {
            let name = &c[1];
            assert!(
                exported.contains(name),
                "{file} uses {name}, which the service does not export"
            );
            seen += 1;
        }
        assert!(seen >= 4, "{file} uses too few metrics");
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("helm/pertinent/dashboards/pertinent.json")).expect("JSON");
    assert!(
        dashboard["panels"]
            .as_array()
            .is_some_and(|p| p.len() >= 10)
    );
}

#[test]
fn the_image_runs_non_root_with_an_exec_form_entrypoint() {
    let dockerfile = read("Dockerfile");
    let entrypoint = dockerfile
        .lines()
        .find(|l| l.starts_with("ENTRYPOINT"))
        .expect("an ENTRYPOINT");
    assert!(
        entrypoint.contains("[\""),
        "ENTRYPOINT must be exec form: {entrypoint}"
    );
    let user = dockerfile
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    assert!(dockerfile.contains("cargo chef cook --release --locked"));
    assert!(
        dockerfile.contains("scripts/fetch-model"),
        "the model must be baked in"
    );
    assert!(
        dockerfile.contains("libstdc++"),
        "ONNX Runtime needs libstdc++"
    );
}

#[test]
fn every_flag_the_readme_lists_is_a_flag_of_serve_with_that_variable() {
    use clap::CommandFactory;
    let cli = pertinent::config::Cli::command();
    let serve = cli.find_subcommand("serve").expect("a serve subcommand");
    let flags: std::collections::HashMap<String, Option<String>> = serve
        .get_arguments()
        .filter_map(|a| {
            let env = a.get_env().map(|e| e.to_string_lossy().into_owned());
            a.get_long().map(|long| (format!("--{long}"), env))
        })
        .collect();
    let readme = read("README.md");
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `--")).collect();
    assert!(
        rows.len() >= 30,
        "the README's configuration table is missing"
    );
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (flag, env) = (cells[1].trim_matches('`'), cells[2].trim_matches('`'));
        assert_eq!(
            flags.get(flag),
            Some(&Some(env.to_owned())),
            "README lists {flag} with {env}; `pertinent serve` disagrees"
        );
    }
}
