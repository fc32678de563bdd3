//! The model-recovery experiments of the attack stage on [`Stage`]: one recovery point
//! (both variants, optionally A_t), `recover` (the default selection), `samples` (versus the
//! attacker's sample count) and `sweep` (per selection percent).

use std::time::Instant;

use anyhow::Result;
use privdnn_artifacts::NeuronSelection;
use serde_json::{Value, json};

use crate::experiment::bar;
use crate::recover::{Variant, from_scratch, recover};
use crate::stage::Stage;

impl Stage {
    /// Both recovery variants of `selection` with `n` samples (and optionally A_t).
    pub fn recovery_point(
        &self,
        selection: &NeuronSelection,
        n: usize,
        with_scratch: bool,
        what: &str,
    ) -> Result<serde_json::Map<String, Value>> {
        let samples = self.samples(n);
        let t = &self.training;
        let total = 2 * t.epochs + if with_scratch { t.scratch_epochs } else { 0 };
        let progress = bar(total as u64, what);
        let mut m = serde_json::Map::new();
        m.insert("samples".into(), json!(samples.len()));
        m.insert("selection".into(), selection.to_reference_json());
        m.insert(
            "sizes".into(),
            json!([selection.layer1.len(), selection.layer2.len()]),
        );
        for variant in [Variant::Freeze, Variant::Unfreeze] {
            let (r, _) = recover(
                &self.model,
                selection,
                &samples,
                &self.eval,
                variant,
                t,
                &self.devices,
                &progress,
            )?;
            let key = match variant {
                Variant::Freeze => "freeze",
                Variant::Unfreeze => "unfreeze",
            };
            m.insert("reinitialized".into(), json!(r.before));
            m.insert("reinitialized_values".into(), json!(r.reinitialized_values));
            m.insert(format!("recovered_{key}"), json!(r.after));
            m.insert(format!("seconds_{key}"), json!(r.seconds));
        }
        if with_scratch {
            let clock = Instant::now();
            let (a_t, _) = from_scratch(
                &self.model,
                &samples,
                &self.eval,
                &self.model.normalization,
                t,
                &self.devices,
                &progress,
            )?;
            m.insert("from_scratch".into(), json!(a_t));
            m.insert(
                "seconds_from_scratch".into(),
                json!(clock.elapsed().as_secs_f64()),
            );
        }
        progress.finish_and_clear();
        Ok(m)
    }

    fn print(&self, what: &str, m: &serde_json::Map<String, Value>) {
        let f = |k: &str| {
            m.get(k)
                .and_then(Value::as_f64)
                .map(|v| format!("{v:.2}"))
                .unwrap_or("-".into())
        };
        println!(
            "{what}: {} samples {} | A_s {} A_r {} | re-initialised {} | A_rec freeze {} unfreeze {} | A_t {}",
            m.get("samples").cloned().unwrap_or_default(),
            m.get("selection").cloned().unwrap_or_default(),
            f("separate"),
            f("removed"),
            f("reinitialized"),
            f("recovered_freeze"),
            f("recovered_unfreeze"),
            f("from_scratch"),
        );
    }

    /// `recover`: the default selection with `attack.samples` samples, with A_t.
    pub fn run_recover(&mut self) -> Result<()> {
        let n = self.cfg.pipeline.attack.samples;
        let sel = self.selection.clone();
        let mut m = self.recovery_point(&sel, n, true, "recovery")?;
        let (a_s, a_r) = self.separate_removed(&sel)?;
        m.insert("separate".into(), json!(a_s));
        m.insert("removed".into(), json!(a_r));
        self.print("recovery", &m);
        let a_t = m.get("from_scratch").cloned().unwrap_or(Value::Null);
        self.put("recovery", Value::Object(m))?;
        self.put("from_scratch", json!({"samples": n, "accuracy": a_t}))
    }

    /// Whether the previous run trained with the same settings as this one.
    fn same_training_settings(&self) -> bool {
        let Ok(now) = serde_json::to_value(&self.cfg.pipeline.attack) else {
            return false;
        };
        let Some(before) = &self.prior_settings else {
            return false;
        };
        [
            "samples",
            "epochs",
            "batch_size",
            "learning_rate",
            "lr_ratio",
            "scratch_epochs",
            "eval_images",
        ]
        .iter()
        .all(|k| now.get(k) == before.get(k))
    }

    /// `samples`: the recovery and A_t versus the attacker's sample count.
    pub fn run_samples(&mut self) -> Result<()> {
        let sel = self.selection.clone();
        let prior = self.prior_points("sample_curve");
        let mut curve = Vec::new();
        for &n in &self.cfg.pipeline.attack.sample_counts.clone() {
            let count = json!(self.samples(n).len());
            let selection = sel.to_reference_json();
            if let Some(m) = prior.iter().find(|m| {
                m.get("samples") == Some(&count) && m.get("selection") == Some(&selection)
            }) {
                log::info!("sample curve: {n} samples kept from the interrupted run");
                curve.push(Value::Object(m.clone()));
                continue;
            }
            // the `recover` experiment is this very point (same samples, seed and settings)
            let reuse = self
                .metrics
                .get("recovery")
                .and_then(Value::as_object)
                .filter(|r| {
                    n == self.cfg.pipeline.attack.samples
                        && r.get("selection") == Some(&sel.to_reference_json())
                        && r.get("samples").and_then(Value::as_u64)
                            == Some(self.samples(n).len() as u64)
                        && r.get("from_scratch").is_some_and(Value::is_number)
                        && self.same_training_settings()
                })
                .cloned();
            let m = match reuse {
                Some(r) => r,
                None => self.recovery_point(&sel, n, true, &format!("{n} samples"))?,
            };
            self.print("sample curve", &m);
            curve.push(Value::Object(m));
            self.put("sample_curve", Value::Array(curve.clone()))?;
        }
        Ok(())
    }

    /// `sweep`: A_s, A_r, A_rec (both) per selection percent.
    pub fn run_sweep(&mut self) -> Result<()> {
        let n = self.cfg.pipeline.attack.samples;
        let prior = self.prior_points("points");
        let mut points = Vec::new();
        for (percent, sel, scores) in self.sweep_selections()? {
            let selection = sel.to_reference_json();
            if let Some(m) = prior.iter().find(|m| {
                m.get("percent") == Some(&json!(percent)) && m.get("selection") == Some(&selection)
            }) {
                log::info!("sweep: {percent} % kept from the interrupted run");
                points.push(Value::Object(m.clone()));
                continue;
            }
            let mut m = self.recovery_point(&sel, n, false, &format!("{percent} %"))?;
            let (a_s, a_r) = match scores {
                Some(s) => s,
                None => self.separate_removed(&sel)?,
            };
            m.insert("percent".into(), json!(percent));
            m.insert("algorithm".into(), json!(sel.algorithm));
            m.insert("separate".into(), json!(a_s));
            m.insert("removed".into(), json!(a_r));
            if let Some(a_t) = self
                .metrics
                .get("from_scratch")
                .and_then(|v| v.get("accuracy"))
                .cloned()
            {
                m.insert("from_scratch".into(), a_t);
            }
            self.print(&format!("{percent} %"), &m);
            points.push(Value::Object(m));
            self.put("points", Value::Array(points.clone()))?;
        }
        Ok(())
    }
}
