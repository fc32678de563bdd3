//! Fixed-key AES: the tweakable circular-correlation-robust (TCCR) hash of the half-gates scheme and
//! an AES-CTR label generator.
//!
//! **Hash.** `H(x, i) = π(π(x) ⊕ i) ⊕ π(x)` with `π` = AES-128 under the public fixed key
//! [`FIXED_KEY`]: the TCCR construction of Guo, Katz, Wang, Yu ("Efficient and secure multiparty
//! computation from fixed-key block ciphers", S&P 2020, §7), the `tccr_hash` of swanky's
//! `scuttlebutt::AesHash`. It costs 2 AES calls per hash (half-gates: 8 to garble an AND, 4 to
//! evaluate); it was chosen over the 1-call `π(2x ⊕ i) ⊕ 2x ⊕ i` of JustGarble/early emp because
//! GKWY20 prove it TCCR in the ideal-permutation model. The tweak is the gate index (`2g`, `2g+1`).
//!
//! **Batching.** [`TccrHash::hash_batch`] hashes many labels with two `encrypt_blocks` calls, so the
//! `aes` crate's AES-NI backend (detected at run time) pipelines 8 blocks at a time.
//! [`AesMode::PerBlock`] hashes one block per call: the naive baseline of the benchmark.

use aes::Aes128Enc;
use aes::cipher::{BlockEncrypt, KeyInit};

/// The public fixed AES key of the hash (any public constant works; this one is ASCII).
pub const FIXED_KEY: [u8; 16] = *b"privdnn-gc-fixed";

/// How the hash drives AES.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AesMode {
    /// Many blocks per `encrypt_blocks` call (pipelined AES-NI). The default.
    Batched,
    /// One `encrypt_block` call per block: the naive baseline.
    PerBlock,
}

fn to_block(x: u128) -> aes::Block {
    aes::Block::from(x.to_le_bytes())
}

fn from_block(b: &aes::Block) -> u128 {
    let bytes: [u8; 16] = (*b).into();
    u128::from_le_bytes(bytes)
}

/// The TCCR hash `H(x, i) = π(π(x) ⊕ i) ⊕ π(x)` with reusable scratch space.
pub struct TccrHash {
    aes: Aes128Enc,
    mode: AesMode,
    blocks: Vec<aes::Block>,
}

impl TccrHash {
    /// The hash under [`FIXED_KEY`].
    pub fn new(mode: AesMode) -> Self {
        TccrHash {
            aes: Aes128Enc::new(&FIXED_KEY.into()),
            mode,
            blocks: Vec::new(),
        }
    }

    /// `xs[k] ← H(xs[k], tweaks[k])` for every `k` (`tweaks` must be at least as long as `xs`).
    pub fn hash_batch(&mut self, xs: &mut [u128], tweaks: &[u128]) {
        match self.mode {
            AesMode::Batched => self.hash_batched(xs, tweaks),
            AesMode::PerBlock => {
                for (x, &t) in xs.iter_mut().zip(tweaks) {
                    *x = self.hash_one(*x, t);
                }
            }
        }
    }

    fn hash_batched(&mut self, xs: &mut [u128], tweaks: &[u128]) {
        self.blocks.clear();
        self.blocks.extend(xs.iter().map(|&x| to_block(x)));
        self.aes.encrypt_blocks(&mut self.blocks);
        for ((x, b), &t) in xs.iter_mut().zip(self.blocks.iter_mut()).zip(tweaks) {
            let px = from_block(b);
            *x = px;
            *b = to_block(px ^ t);
        }
        self.aes.encrypt_blocks(&mut self.blocks);
        for (x, b) in xs.iter_mut().zip(&self.blocks) {
            *x ^= from_block(b);
        }
    }

    /// `H(x, tweak)` with two single-block AES calls.
    pub fn hash_one(&self, x: u128, tweak: u128) -> u128 {
        let mut b = to_block(x);
        self.aes.encrypt_block(&mut b);
        let px = from_block(&b);
        let mut c = to_block(px ^ tweak);
        self.aes.encrypt_block(&mut c);
        from_block(&c) ^ px
    }
}

/// AES-128 in counter mode under a secret key: the garbler's source of wire labels and Δ.
pub struct LabelPrg {
    aes: Aes128Enc,
    counter: u128,
    blocks: Vec<aes::Block>,
}

impl LabelPrg {
    /// A generator keyed by `key` (keep it secret: whoever knows it knows every label and Δ).
    pub fn new(key: [u8; 16]) -> Self {
        Self::with_stream(key, 0)
    }

    /// Independent stream `stream` under the same key: the counter starts at `stream · 2^64`.
    pub fn with_stream(key: [u8; 16], stream: u64) -> Self {
        LabelPrg {
            aes: Aes128Enc::new(&key.into()),
            counter: u128::from(stream) << 64,
            blocks: Vec::new(),
        }
    }

    /// Fills `out` with fresh pseudo-random labels.
    pub fn fill(&mut self, out: &mut [u128]) {
        self.blocks.clear();
        let start = self.counter;
        self.blocks
            .extend((0..out.len() as u128).map(|k| to_block(start.wrapping_add(k))));
        self.counter = start.wrapping_add(out.len() as u128);
        self.aes.encrypt_blocks(&mut self.blocks);
        for (o, b) in out.iter_mut().zip(&self.blocks) {
            *o = from_block(b);
        }
    }

    /// One fresh label.
    pub fn next_label(&mut self) -> u128 {
        let mut one = [0u128; 1];
        self.fill(&mut one);
        one[0]
    }
}

/// A [`LabelPrg`] read one value at a time, refilled 256 blocks per AES call.
pub struct CtrStream {
    prg: LabelPrg,
    buf: Vec<u128>,
    pos: usize,
}

impl CtrStream {
    /// Stream `stream` under `key`.
    pub fn new(key: [u8; 16], stream: u64) -> Self {
        CtrStream {
            prg: LabelPrg::with_stream(key, stream),
            buf: vec![0; 256],
            pos: 256,
        }
    }

    /// The next 128 pseudo-random bits.
    pub fn next_u128(&mut self) -> u128 {
        if self.pos == self.buf.len() {
            self.prg.fill(&mut self.buf);
            self.pos = 0;
        }
        self.pos += 1;
        self.buf[self.pos - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_equals_per_block_and_tweak_matters() {
        let xs: Vec<u128> = (0..37u128)
            .map(|k| k.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            .collect();
        let tw: Vec<u128> = (0..37u128).map(|k| 2 * k + 1).collect();
        let mut a = xs.clone();
        let mut b = xs.clone();
        TccrHash::new(AesMode::Batched).hash_batch(&mut a, &tw);
        TccrHash::new(AesMode::PerBlock).hash_batch(&mut b, &tw);
        assert_eq!(a, b);
        let h = TccrHash::new(AesMode::Batched);
        assert_ne!(h.hash_one(xs[3], 0), h.hash_one(xs[3], 1));
        assert_ne!(a, xs);
    }

    #[test]
    fn prg_is_deterministic_per_key_and_fresh() {
        let mut p = LabelPrg::new([7; 16]);
        let mut q = LabelPrg::new([7; 16]);
        let mut r = LabelPrg::new([8; 16]);
        let (a, b, c) = (p.next_label(), q.next_label(), r.next_label());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, p.next_label());
    }
}
