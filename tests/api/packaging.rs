//! Static checks of the Helm chart and the Dockerfile (no helm binary or Docker engine here):
//! the YAML parses, every value is documented with an `## @param` line, every template
//! reference names an existing value, and the image runs non-root with an exec-form entrypoint.

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

    let templates = root().join("helm/pertinent/templates");
    let mut referenced = 0;
    for entry in std::fs::read_dir(&templates).unwrap() {
        let path = entry.unwrap().path();
        let body = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
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
