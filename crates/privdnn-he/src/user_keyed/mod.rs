//! User-keyed mode: the user holds the BFV keys, the owner evaluates the selected filters with its
//! plaintext weights and never decrypts anything.
//!
//! **Why.** In the owner-keyed mode ([`crate::protocol`]) the owner decrypts whatever a user
//! sends, which hands its secret key to a malicious user in one request. Here the owner has no
//! secret key at all: [`KeyedOwner`] holds the integer block, the selection and parameters, and
//! nothing it computes is ever decrypted on its side. No encrypted weights are shipped either.
//!
//! **Protocol (per CRT residue, same [`HeParams`] as the owner-keyed mode: N = 8192, 4 × 54-bit
//! primes, two 24-bit plaintext primes).**
//! 1. Owner → user, once: [`KeyedModel`] (parameters, the plaintext remainder of the block with
//!    every selected weight zeroed, the selection).
//! 2. User: generates its own secret, public, relinearisation and (spatial layout) rotation keys
//!    ([`KeyedUser::new`]), and for a batch of centred images sends a [`UserKeyedRequest`]: its
//!    keys, secret-key encryptions (seeded, half size) of its input pixels in the layout of
//!    [`KeyedPlan`], and encryptions of its own clear squares `a1` of the non-selected layer-1
//!    channels (computed from the remainder; cheaper than squaring them under HE).
//! 3. Owner ([`KeyedOwner::answer`]): validates the request (counts, levels, sizes, keys),
//!    evaluates `U_c = B1_c + Σ W1·X` (ct×scalar), `A_c = U_c²` (the only ct×ct, lazy with the
//!    user's relinearisation key), `Z_j = B2_j + Σ W2·A` over all layer-1 channels (ct×scalar on
//!    its squares and the user's `a1`; spatial layout: channel sums rotated per conv2 tap), then
//!    sanitises every reply ciphertext: `+ Enc_pk(r)` under the user's public key with r = 0 on
//!    the slots the user may learn and uniform mod t elsewhere (re-randomises c1 and hides
//!    padding/garbage slots), switches to the last prime and compacts it ([`crate::compact`]).
//!    The bound that makes the switch hide the evaluation noise is in [`noise`] and checked in
//!    [`KeyedOwner::new`]: evaluation noise after the switch ≤ 2^-40 of the rounding noise.
//! 4. User ([`KeyedUser::finish`]): decrypts, CRT-combines the residues and obtains exactly the
//!    selected layer-2 outputs `z2` (and with `layer1`, the selected layer-1 squares for a
//!    ResNet shortcut), bit-exact with [`IntBlock`]'s integer shadow.
//!
//! **What it does not protect.** The reply is a function of the weights on inputs the user
//! chooses: a user can solve for the selected weights from a few replies (inherent to every
//! partial-encryption design). A malicious user may also send ciphertexts with chosen noise; the
//! smudging bound assumes fresh inputs, but such a user gains nothing beyond the chosen-input
//! extraction it can run anyway. What this mode removes is the key-recovery oracle.

mod arith;
pub mod noise;
mod owner;
pub mod plan;
mod user;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::block::IntBlock;
use crate::compact::CompactCiphertext;
use crate::engine::Layout;
use crate::params::HeParams;

pub use owner::{KeyedOwner, Stage};
pub use plan::KeyedPlan;
pub use user::{KeyedOutput, KeyedUser, Pending};

/// What the owner publishes in user-keyed mode: no selected weight, encrypted or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyedModel {
    /// Parameter sets, one per CRT residue.
    pub params: Vec<HeParams>,
    /// The quantised block with every selected weight and bias zeroed.
    pub plain: IntBlock,
    /// Selected layer-1 channels.
    pub s1: Vec<usize>,
    /// Selected layer-2 filters.
    pub s2: Vec<usize>,
    /// Whether replies also carry the selected layer-1 squares (ResNet's shortcut).
    pub layer1: bool,
}

/// The user's public keys of one residue (fhe's serialisation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResidueKeys {
    /// Public key (the owner's re-randomisation encrypts under it).
    pub public_key: ByteBuf,
    /// Relinearisation key (the square).
    pub relin_key: ByteBuf,
    /// Column-rotation keys of the spatial layout's conv2 taps.
    pub rotation_key: Option<ByteBuf>,
}

impl ResidueKeys {
    /// Serialised size.
    pub fn bytes(&self) -> usize {
        self.public_key.len()
            + self.relin_key.len()
            + self.rotation_key.as_ref().map_or(0, |r| r.len())
    }
}

/// One residue of a request: keys and fresh, seeded, full-level ciphertexts (fhe's format).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResidueRequest {
    /// The user's keys.
    pub keys: ResidueKeys,
    /// conv1 operands in the order of [`KeyedPlan`] (`input_count`).
    pub inputs: Vec<ByteBuf>,
    /// The user's non-selected layer-1 squares (`a1_count`).
    pub a1: Vec<ByteBuf>,
}

/// User → owner: everything one evaluation needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserKeyedRequest {
    /// Slot layout.
    pub layout: Layout,
    /// Images in the request.
    pub images: u32,
    /// One entry per CRT residue.
    pub residues: Vec<ResidueRequest>,
}

impl UserKeyedRequest {
    /// Bytes of keys.
    pub fn key_bytes(&self) -> usize {
        self.residues.iter().map(|r| r.keys.bytes()).sum()
    }

    /// Bytes of ciphertexts.
    pub fn ciphertext_bytes(&self) -> usize {
        self.residues
            .iter()
            .flat_map(|r| r.inputs.iter().chain(&r.a1))
            .map(|b| b.len())
            .sum()
    }

    /// Payload bytes (keys + ciphertexts; the codec adds a few length prefixes).
    pub fn bytes(&self) -> usize {
        self.key_bytes() + self.ciphertext_bytes()
    }
}

/// Owner → user: per residue, the sanitised outputs at the last level, `z` of every selected
/// filter (`jj · outputs + o`), then with `layer1` the selected squares (`cc · maps + m`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserKeyedReply {
    /// Compact ciphertexts per residue.
    pub residues: Vec<Vec<CompactCiphertext>>,
}

impl UserKeyedReply {
    /// Payload bytes.
    pub fn bytes(&self) -> usize {
        self.residues.iter().flatten().map(|c| c.len()).sum()
    }
}
