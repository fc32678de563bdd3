//! Attack stage (spec §4): how much does the encrypted part really protect?
//!
//! * [`reinit`] + [`recover`]: model recovery with the encrypted filters re-initialised for real
//!   (the reference's HEAD never used them, spec §8.1.1), fine-tuned with the plaintext part
//!   frozen or trained (A_rec), and training from scratch on the same samples (A_t);
//! * [`extract`]: weight extraction by the user from chosen queries (the decrypted selected
//!   layer-2 outputs are a quadratic function of the input), solved by alternating least
//!   squares;
//! * [`invert`]: input recovery by the owner from the layer-2 values it decrypts, unblinded (the
//!   reference) and blinded (our protocol), with PSNR / SSIM and a picture grid;
//! * [`spnn_leakage`]: what the SPNN split-training server learns: the training images
//!   reconstructed from the first-layer outputs z1 it sees, blind and with the released conv1;
//! * [`key_recovery`]: key recovery by a malicious user against the running owner service
//!   (one crafted decryption request), scored against the owner's files;
//! * [`experiment`]: the plain inputs of the experiments (no CLI types in library modules);
//! * [`stage`]: what the experiments share ([`stage::Stage`]), loaded from a run folder;
//! * [`cli`]: the `privdnn-attack` stage writing `results/<run>/attack/metrics.json`.
//!
//! Library code never reads files except through `stage.rs` (the run folder, the SPNN runs under
//! `baselines/spnn/`) and the attacker's own cache folder in `key_recovery`.

pub mod cli;
mod error;
pub mod experiment;
pub mod extract;
pub mod fit;
pub mod invert;
pub mod key_recovery;
pub mod recover;
mod recovery_runs;
pub mod reinit;
mod selections;
pub mod spnn_leakage;
pub mod stage;

pub use error::AttackError;

#[cfg(test)]
mod tests;
