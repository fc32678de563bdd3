//! Artifact payloads of the encrypt stage. Three separate files, so that the user's side can be
//! given everything except the secret: the encrypted model (with the plaintext remainder), the
//! public evaluation keys, and the owner's secret (key + the quantised block it verifies with).

use privdnn_artifacts::{Artifact, ArtifactKind, NeuronSelection, TrainedModel};
use serde::{Deserialize, Serialize};

use crate::block::IntBlock;
use crate::protocol::{EncryptedBlock, OwnerSecret, PublicKeys};

/// What the user receives: the encrypted block and the float model with every secret weight
/// zeroed (selected conv1 channels, selected conv2 filters, separation applied).
#[derive(Clone, Serialize, Deserialize)]
pub struct EncryptedModelFile {
    /// The encrypted block.
    pub block: EncryptedBlock,
    /// The selection (public: the user must know which channels are ciphertexts).
    pub selection: NeuronSelection,
    /// Float remainder model.
    pub remainder: TrainedModel,
    /// Whether the tail also needs the selected layer-1 outputs (ResNet18's shortcut).
    pub layer1_outputs: bool,
}

impl Artifact for EncryptedModelFile {
    const KIND: ArtifactKind = ArtifactKind::EncryptedModel;

    /// The selection is valid, is the one the block was encrypted for, and the remainder model
    /// is consistent (a downloaded file is checked for meaning before it is expanded).
    fn check(&self) -> Result<(), String> {
        self.selection.check()?;
        if self.selection.layer1 != self.block.s1 || self.selection.layer2 != self.block.s2 {
            return Err(format!(
                "the selection {:?}/{:?} is not the one the block was encrypted for ({:?}/{:?})",
                self.selection.layer1, self.selection.layer2, self.block.s1, self.block.s2
            ));
        }
        self.remainder.check()
    }
}

/// Public evaluation keys.
#[derive(Clone, Serialize, Deserialize)]
pub struct EvaluationKeysFile {
    /// The keys.
    pub keys: PublicKeys,
}

impl Artifact for EvaluationKeysFile {
    const KIND: ArtifactKind = ArtifactKind::EvaluationKeys;
}

/// The owner's secret: BFV secret keys and the full quantised block.
#[derive(Clone, Serialize, Deserialize)]
pub struct OwnerSecretFile {
    /// Secret keys.
    pub secret: OwnerSecret,
    /// The full quantised block (for the shadow check of the measurement harness).
    pub block: IntBlock,
}

impl Artifact for OwnerSecretFile {
    const KIND: ArtifactKind = ArtifactKind::OwnerSecretKey;
}
