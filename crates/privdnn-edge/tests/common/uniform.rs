//! Uniformity statistics of the 64-bit words a party receives (its view): a protocol's views
//! must look uniform, a clear value must not. Shared by privdnn-edge's and privdnn-twoserver's
//! view tests.

/// Number of standard deviations by which the per-bit frequency of `words` departs from 1/2,
/// worst bit.
pub fn worst_bit_deviation(words: &[u64]) -> f64 {
    let n = words.len() as f64;
    (0..64)
        .map(|b| {
            let ones = words.iter().filter(|w| (*w >> b) & 1 == 1).count() as f64;
            (ones - n / 2.0).abs() / (n / 4.0).sqrt()
        })
        .fold(0.0, f64::max)
}

/// Chi-square statistic of the byte histogram of `words` (256 bins), in standard deviations
/// above its mean under uniformity (255 degrees of freedom: mean 255, sd √510).
pub fn byte_chi_square(words: &[u64]) -> f64 {
    let mut bins = [0f64; 256];
    for w in words {
        for b in w.to_le_bytes() {
            bins[b as usize] += 1.0;
        }
    }
    let expected = words.len() as f64 * 8.0 / 256.0;
    let chi2: f64 = bins.iter().map(|o| (o - expected).powi(2) / expected).sum();
    (chi2 - 255.0) / 510f64.sqrt()
}

/// Both uniformity statistics (worst-bit deviation, byte chi-square) below 5σ.
pub fn looks_uniform(words: &[u64]) -> bool {
    worst_bit_deviation(words) < 5.0 && byte_chi_square(words) < 5.0
}
