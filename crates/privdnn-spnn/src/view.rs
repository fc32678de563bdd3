//! What the server saw: the first-layer outputs z1 of some training images, as it reconstructed
//! them, kept by the server role of a run for the leakage experiment (`privdnn-attack run
//! --only spnn_leakage`), which inverts them and scores the reconstructions against the images.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::SpnnError;

/// File name of a run's server view, in the run variant's directory.
pub const SERVER_VIEW_FILE: &str = "server_view.bin";

/// The z1 of some training images as the server saw them during the last epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerView {
    /// Dataset name of the run.
    pub dataset: String,
    /// SGLD noise σ of the run (0 = none).
    pub noise_sigma: f64,
    /// 1-based epoch during which the view was recorded.
    pub epoch: usize,
    /// Indices of the images in the pipeline's training split.
    pub indices: Vec<usize>,
    /// Shape `[c1, h1, w1]` of one image's z1.
    pub shape: [usize; 3],
    /// z1 of every recorded image (`indices.len() × shape`, row-major), decoded to float.
    pub z1: Vec<f32>,
}

impl ServerView {
    /// Writes the view atomically.
    pub fn write(&self, path: &Path) -> Result<(), SpnnError> {
        crate::process::write_state(path, self)
    }

    /// Reads a view written by [`ServerView::write`].
    pub fn read(path: &Path) -> Result<Self, SpnnError> {
        if !path.exists() {
            return Err(SpnnError::config(format!(
                "{}: no server view (run `cargo xtask baseline spnn <pipeline>` first)",
                path.display()
            )));
        }
        let view: Self = crate::process::read_state(path, "spnn server view")?;
        let per: usize = view.shape.iter().product();
        if view.z1.len() != view.indices.len() * per {
            return Err(SpnnError::config(format!(
                "{}: {} values for {} images of {:?}",
                path.display(),
                view.z1.len(),
                view.indices.len(),
                view.shape
            )));
        }
        Ok(view)
    }
}
