//! Measurement only: the integer shadow of a user-keyed run, from the owner's
//! `owner/keyed_block.bin` (the full quantised block, which a real user never has). The client
//! uses it when `--audit-owner-block` names that file (loopback measurements, tests) to count
//! the images whose decrypted outputs equal the shadow bit for bit and whose predictions equal
//! the predictions with the shadow's outputs.

use std::path::Path;

use privdnn_artifacts::DatasetSplit;
use privdnn_model::RemainderNet;
use privdnn_partial::keyed::{KeyedOwnerFile, KeyedUserSide};
use privdnn_partial::{SelectedOutputs, shadow_outputs};

use crate::PartyError;
use crate::classify::{ShadowCheck, argmax_rows};

/// The owner's block and the running counts.
pub struct Shadow {
    file: KeyedOwnerFile,
    check: ShadowCheck,
}

impl Shadow {
    /// Opens the owner's block.
    pub fn open(path: &Path) -> Result<Self, PartyError> {
        Ok(Self {
            file: privdnn_artifacts::read_artifact(path)?,
            check: ShadowCheck {
                exact_images: 0,
                same_predictions: 0,
                images: 0,
            },
        })
    }

    /// Compares one batch: its decrypted `outputs` and the `logits` finished from them.
    pub fn compare(
        &mut self,
        (user, tail): (&KeyedUserSide, &RemainderNet),
        split: &DatasetSplit,
        chunk: &[usize],
        outputs: &SelectedOutputs,
        logits: &[f32],
    ) -> Result<(), PartyError> {
        if self.file.selection.layer2 != user.selection.layer2 {
            return Err(PartyError::Usage(
                "--audit-owner-block: the owner's block has another selection than the model"
                    .into(),
            ));
        }
        let raw: Vec<&[u8]> = chunk.iter().map(|&i| split.image(i)).collect();
        let shadow = shadow_outputs(&self.file.block, &user.selection, &raw, self.file.layer1);
        let same = |n: usize| {
            outputs.z.get(n) == shadow.z.get(n)
                && (shadow.a1.is_empty() || outputs.a1.get(n) == shadow.a1.get(n))
        };
        self.check.exact_images += (0..chunk.len()).filter(|&n| same(n)).count();
        let classes = user.remainder.spec.num_classes;
        let want = argmax_rows(
            &tail.logits(split, chunk, &user.injection(&shadow))?,
            classes,
        );
        let got = argmax_rows(logits, classes);
        self.check.same_predictions += got.iter().zip(&want).filter(|(a, b)| a == b).count();
        self.check.images += chunk.len();
        Ok(())
    }

    /// The counts.
    pub fn check(self) -> ShadowCheck {
        self.check
    }
}
