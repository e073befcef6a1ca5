//! Decision thresholds and the scoring parameters file, read once into `ScoringOptions`.

use super::*;

/// Decision thresholds and the scoring model's parameters.
#[derive(Debug, Clone, Args)]
pub struct ScoringSettings {
    /// Score at or above which an allowed candidate is SEND.
    #[arg(long, env = "PERTINENT_SEND_THRESHOLD")]
    pub send_threshold: Option<f32>,

    /// Score at or above which a candidate is REVIEW (below: REJECT).
    #[arg(long, env = "PERTINENT_REVIEW_THRESHOLD")]
    pub review_threshold: Option<f32>,

    /// JSON file overriding any scoring parameter (docs/scoring.md lists them).
    #[arg(long, env = "PERTINENT_SCORING_CONFIG")]
    pub scoring_config: Option<PathBuf>,
}

impl ScoringSettings {
    /// The scoring parameters: defaults, then the file, then the threshold flags; validated.
    pub(super) fn options(&self) -> anyhow::Result<ScoringOptions> {
        let mut config = match &self.scoring_config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?
            }
            None => ScoringOptions::default(),
        };
        if let Some(t) = self.send_threshold {
            config.send_threshold = t;
        }
        if let Some(t) = self.review_threshold {
            config.review_threshold = t;
        }
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("scoring settings: {e}"))?;
        Ok(config)
    }
}
