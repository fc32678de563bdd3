//! The run folder layout, in one place: every stage, the deployment binary and xtask name the
//! files of `results/<run>/` through [`RunLayout`], so no crate needs another stage's crate to
//! find its inputs.
//!
//! ```text
//! results/<run>/train/{model.bin, metrics.json, checkpoint.bin}
//! results/<run>/select/{selection.bin, selection.json, metrics.json, sweep.json}
//! results/<run>/attack/metrics.json
//! <out>/encrypt/{encrypted_model.bin, evaluation_keys.bin, metrics.json}
//! <out>/owner/secret_key.bin                               (owner only)
//! <out>/encrypt/keyed_model.bin, <out>/owner/keyed_block.bin  (user-keyed mode)
//! <out>/infer/{metrics.json, summary.md}
//! <out>/client/…, <out>/party/{client.json, load.json}
//! ```
//!
//! `<out>` is the run folder itself, or `results/<run>/variants/<name>/` for an experiment that
//! must not replace the pipeline's own encryption (`--variant <name>`): the trained model, the
//! selection and the attack stay at run level.

use std::path::{Path, PathBuf};

/// Paths of one run (and optionally one of its variants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLayout {
    run: PathBuf,
    out: PathBuf,
}

impl RunLayout {
    /// The layout of run folder `run_dir` (`results/<run>`).
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        let run = run_dir.into();
        Self {
            out: run.clone(),
            run,
        }
    }

    /// The same run with the encrypt/owner/infer/party outputs under `variants/<name>/` when
    /// `variant` is given.
    pub fn with_variant(self, variant: Option<&str>) -> Self {
        match variant {
            Some(v) => Self {
                out: self.run.join("variants").join(v),
                run: self.run,
            },
            None => self,
        }
    }

    /// `results/<run>`.
    pub fn run_dir(&self) -> &Path {
        &self.run
    }

    /// Folder of the protocol outputs: the run folder or `variants/<name>`.
    pub fn output_dir(&self) -> &Path {
        &self.out
    }

    /// `config.toml`: the resolved config the train stage records.
    pub fn config_toml(&self) -> PathBuf {
        self.run.join("config.toml")
    }

    /// Folder of a stage at run level (`train`, `select`, `attack`).
    pub fn stage_dir(&self, stage: &str) -> PathBuf {
        self.run.join(stage)
    }

    /// `train/model.bin`.
    pub fn trained_model(&self) -> PathBuf {
        self.run.join("train").join("model.bin")
    }

    /// `train/checkpoint.bin`.
    pub fn train_checkpoint(&self) -> PathBuf {
        self.run.join("train").join("checkpoint.bin")
    }

    /// `train/metrics.json`.
    pub fn train_metrics(&self) -> PathBuf {
        self.run.join("train").join("metrics.json")
    }

    /// `select/selection.bin`.
    pub fn selection(&self) -> PathBuf {
        self.run.join("select").join("selection.bin")
    }

    /// `select/metrics.json`.
    pub fn select_metrics(&self) -> PathBuf {
        self.run.join("select").join("metrics.json")
    }

    /// `select/sweep.json`.
    pub fn sweep(&self) -> PathBuf {
        self.run.join("select").join("sweep.json")
    }

    /// `attack/` (run level).
    pub fn attack_dir(&self) -> PathBuf {
        self.run.join("attack")
    }

    /// `<out>/encrypt/encrypted_model.bin` (for the user).
    pub fn encrypted_model(&self) -> PathBuf {
        self.out.join("encrypt").join("encrypted_model.bin")
    }

    /// `<out>/encrypt/evaluation_keys.bin` (for the user).
    pub fn evaluation_keys(&self) -> PathBuf {
        self.out.join("encrypt").join("evaluation_keys.bin")
    }

    /// `<out>/encrypt/metrics.json`.
    pub fn encrypt_metrics(&self) -> PathBuf {
        self.out.join("encrypt").join("metrics.json")
    }

    /// `<out>/owner/secret_key.bin` (the owner's only; user code never names it).
    pub fn owner_secret(&self) -> PathBuf {
        self.out.join("owner").join("secret_key.bin")
    }

    /// `<out>/encrypt/keyed_model.bin` (user-keyed mode, for the user: no selected weight).
    pub fn keyed_model(&self) -> PathBuf {
        self.out.join("encrypt").join("keyed_model.bin")
    }

    /// `<out>/owner/keyed_block.bin` (user-keyed mode, the owner's plaintext block; no key).
    pub fn keyed_owner_block(&self) -> PathBuf {
        self.out.join("owner").join("keyed_block.bin")
    }

    /// `<out>/infer/`.
    pub fn infer_dir(&self) -> PathBuf {
        self.out.join("infer")
    }

    /// `<out>/client/`: the user's verified download cache of the deployment binary.
    pub fn client_cache(&self) -> PathBuf {
        self.out.join("client")
    }

    /// `<out>/party/`: reports of the deployment binary.
    pub fn party_dir(&self) -> PathBuf {
        self.out.join("party")
    }

    /// The file whose manifest says whether `stage` is up to date, for stages with one.
    pub fn stage_artifact(&self, stage: &str) -> Option<PathBuf> {
        match stage {
            "train" => Some(self.trained_model()),
            "select" => Some(self.selection()),
            "encrypt" => Some(self.encrypted_model()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_move_only_the_protocol_outputs() {
        let l = RunLayout::new("results/mnist").with_variant(Some("v1"));
        assert_eq!(
            l.trained_model(),
            Path::new("results/mnist/train/model.bin")
        );
        assert_eq!(
            l.selection(),
            Path::new("results/mnist/select/selection.bin")
        );
        assert_eq!(
            l.encrypted_model(),
            Path::new("results/mnist/variants/v1/encrypt/encrypted_model.bin")
        );
        assert_eq!(
            l.owner_secret(),
            Path::new("results/mnist/variants/v1/owner/secret_key.bin")
        );
        let plain = RunLayout::new("r");
        assert_eq!(plain.infer_dir(), Path::new("r/infer"));
        assert_eq!(plain.stage_artifact("infer"), None);
    }
}
