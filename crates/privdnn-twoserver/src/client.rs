//! The client: centres its image as PrivDNN does, sends server 1 a seed of its share and server 2
//! the rest (`x − PRG(seed)`), and reconstructs only the logits from the two returned shares.

use privdnn_mpc::{IntModel, MaskKey, ring, shadow};
use rand::Rng;

use crate::messages::{InputSeed, InputShare, LogitShare};
use crate::{Result, TwoServerError};

/// Stream label of S1's input share.
pub(crate) const LABEL_INPUT: &str = "twoserver/input";

/// The client role.
pub struct Client {
    public: IntModel,
}

impl Client {
    /// A client of the public architecture.
    pub fn new(public: IntModel) -> Self {
        Client { public }
    }

    /// Shares one raw image for query `query`; fresh randomness from `rng`.
    pub fn query<R: Rng + ?Sized>(
        &self,
        query: u64,
        raw: &[u8],
        rng: &mut R,
    ) -> Result<(InputSeed, InputShare)> {
        let x = shadow::center(&self.public, raw)?;
        let key = MaskKey::from_rng(rng);
        let x1 = key.stream(LABEL_INPUT, &[]).ring(x.len());
        Ok((
            InputSeed { query, seed: key.0 },
            InputShare {
                query,
                share: ring::sub(&x, &x1).into(),
            },
        ))
    }

    /// The integer logits from both servers' shares.
    pub fn finish(&self, query: u64, a: &LogitShare, b: &LogitShare) -> Result<Vec<i64>> {
        if a.query != query || b.query != query || a.server == b.server {
            return Err(TwoServerError::protocol(
                "logit shares of another query or twice from one server",
            ));
        }
        if a.words.len() != b.words.len() || a.words.len() != self.public.spec.num_classes {
            return Err(TwoServerError::protocol("logit shares of the wrong length"));
        }
        Ok(ring::to_signed_vec(&ring::add(&a.words.0, &b.words.0)))
    }
}
