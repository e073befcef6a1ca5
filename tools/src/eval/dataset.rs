//! The labelled data set format (tests/data/*/*.json) and reading it from files and folders.

use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

/// A labelled data set.
#[derive(Debug, Clone, Deserialize)]
pub struct Dataset {
    pub name: String,
    pub tenants: Vec<TenantData>,
}

/// One sender's prospects, content and drafts.
#[derive(Debug, Clone, Deserialize)]
pub struct TenantData {
    pub id: String,
    pub prospects: Vec<ProspectData>,
    pub content: Vec<ContentData>,
    #[serde(default)]
    pub drafts: Vec<DraftSet>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProspectData {
    pub id: String,
    pub name: String,
    pub company: String,
    pub role: String,
    pub signals: Vec<SignalData>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SignalData {
    pub id: String,
    /// SignalSource without its prefix: CALL_NOTE, WEB_VISIT, ...
    pub source: String,
    /// POSITIVE (default) or NEGATIVE.
    #[serde(default)]
    pub polarity: Option<String>,
    pub days_ago: u32,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ContentData {
    pub id: String,
    /// ContentKind without its prefix.
    pub kind: String,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub generic: bool,
    #[serde(default)]
    pub refused_by: Vec<String>,
    #[serde(default)]
    pub distractor: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DraftSet {
    pub prospect: String,
    pub personal: DraftData,
    pub generic: DraftData,
    #[serde(default)]
    pub placeholder: Option<DraftData>,
    /// All about the sender, little about the reader.
    #[serde(default)]
    pub self_focused: Option<DraftData>,
    /// Addressed to the prospect by name, about something they never showed interest in.
    #[serde(default)]
    pub off_topic: Option<DraftData>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DraftData {
    pub title: String,
    pub body: String,
}

/// Reads a data set file.
pub fn read_dataset(path: &std::path::Path) -> anyhow::Result<Dataset> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The data sets named by `paths`, each with its group: a file stands for itself (its group is
/// its folder's name), a folder for every `*.json` in it, in name order.
pub fn read_datasets(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, Dataset)>> {
    let mut out = Vec::new();
    for path in paths {
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            files.retain(|f| f.extension().is_some_and(|e| e == "json"));
            files.sort();
            anyhow::ensure!(
                !files.is_empty(),
                "{} holds no .json data set",
                path.display()
            );
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            let group = file
                .parent()
                .and_then(|p| p.file_name())
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            out.push((group, read_dataset(&file)?));
        }
    }
    Ok(out)
}
