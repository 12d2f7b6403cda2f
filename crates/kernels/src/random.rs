//! A small, fast, seedable random number generator with streams keyed by
//! integers.
//!
//! Training draws randomness in many places (weight initialization,
//! shuffling, dropout masks) and must replay every draw exactly when a run
//! is resumed from the middle. Rather than carry one generator's state
//! through the run, each use derives its own stream from a key such as
//! `(seed, epoch, step, layer)`: a resumed run re-derives the same streams
//! without storing anything. The algorithms are spelled out here, not taken
//! from a crate, so the streams cannot change under a dependency update.
//!
//! The generator is xoshiro256++ seeded through SplitMix64, as its authors
//! recommend; both are public-domain designs by Blackman and Vigna.

use multiversion::multiversion;

use crate::Float;

/// A xoshiro256++ generator.
///
/// # Example
///
/// ```
/// use ferrochem_kernels::random::Rng;
///
/// let mut a = Rng::from_key(&[7, 0, 3]);
/// let mut b = Rng::from_key(&[7, 0, 3]);
/// assert_eq!(a.next_u64(), b.next_u64());
/// let u = a.uniform_f64();
/// assert!((0.0..1.0).contains(&u));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: [u64; 4],
}

impl Rng {
    /// A generator seeded from one integer.
    pub fn new(seed: u64) -> Self {
        Self::from_key(&[seed])
    }

    /// A generator whose stream is determined by every integer of `key`, in
    /// order: different keys give unrelated streams.
    pub fn from_key(key: &[u64]) -> Self {
        let mut mix = 0x6A09_E667_F3BC_C908u64;
        for &part in key {
            mix = splitmix64(&mut (mix ^ part));
        }
        let mut sm = mix;
        let state =
            [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)];
        Rng { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform draw from `[0, 1)` with 53 random bits.
    pub fn uniform_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform draw from `[0, 1)` with 24 random bits.
    pub fn uniform_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// A uniform integer in `0..bound`, without modulo bias (Lemire's
    /// multiply-and-reject method).
    ///
    /// # Panics
    ///
    /// Panics if `bound` is 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "Rng::below needs a positive bound");
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// A standard normal draw, by the Box–Muller transform.
    pub fn normal_f64(&mut self) -> f64 {
        // 1 − u lies in (0, 1], so the logarithm is finite.
        let u = 1.0 - self.uniform_f64();
        let v = self.uniform_f64();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for idx in (1..items.len()).rev() {
            let other = self.below(idx as u64 + 1) as usize;
            items.swap(idx, other);
        }
    }
}

/// Fills `dst` with a keep-or-drop mask drawn from `rng`: entry `i` looks
/// at the 16-bit lane `i % 4` (lowest bits first) of the `i / 4`-th draw
/// and is `keep` where that lane is at least `threshold`, zero elsewhere.
/// A final draw that only partly fills `dst` is still consumed whole.
///
/// So each entry is dropped with probability `threshold / 2¹⁶`; this is
/// an inverted-dropout mask when `keep` is `1 / (1 − rate)` and
/// `threshold` is `rate · 2¹⁶` rounded.
///
/// # Example
///
/// ```
/// use ferrochem_kernels::random::{fill_keep_mask, Rng};
///
/// let mut mask = [0.0f32; 6];
/// fill_keep_mask(&mut mask, &mut Rng::new(1), 1 << 15, 2.0);
/// assert!(mask.iter().all(|&m| m == 0.0 || m == 2.0));
/// ```
pub fn fill_keep_mask<T: Float>(dst: &mut [T], rng: &mut Rng, threshold: u32, keep: T) {
    // The draws are serial; comparing and selecting is not, so lanes are
    // drawn a block at a time and then turned into entries by a loop that
    // vectorizes.
    const BLOCK: usize = 1024;
    let mut lanes = [0u16; BLOCK];
    for dst in dst.chunks_mut(BLOCK) {
        for group in lanes[..dst.len().div_ceil(4) * 4].chunks_exact_mut(4) {
            let bits = rng.next_u64();
            for (slot, lane) in group.iter_mut().enumerate() {
                *lane = (bits >> (16 * slot)) as u16;
            }
        }
        select_kernel(dst, &lanes[..dst.len()], threshold, keep);
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx512bw", "x86_64+avx2+fma", "aarch64+neon"))]
fn select_kernel<T: Float>(dst: &mut [T], lanes: &[u16], threshold: u32, keep: T) {
    for (value, &lane) in dst.iter_mut().zip(lanes) {
        *value = if u32::from(lane) >= threshold { keep } else { T::ZERO };
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_select_reproducible_independent_streams() {
        let first: Vec<u64> = (0..4)
            .map({
                let mut rng = Rng::from_key(&[1, 2]);
                move |_| rng.next_u64()
            })
            .collect();
        let again: Vec<u64> = (0..4)
            .map({
                let mut rng = Rng::from_key(&[1, 2]);
                move |_| rng.next_u64()
            })
            .collect();
        assert_eq!(first, again);
        assert_ne!(Rng::from_key(&[2, 1]).next_u64(), first[0]);
        assert_ne!(Rng::from_key(&[1, 2, 0]).next_u64(), first[0]);
    }

    #[test]
    fn draws_have_the_right_moments() {
        let mut rng = Rng::new(42);
        let n = 200_000;
        let normals: Vec<f64> = (0..n).map(|_| rng.normal_f64()).collect();
        let mean = normals.iter().sum::<f64>() / n as f64;
        let var = normals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors are 1/√n ≈ 0.0022 for the mean and about
        // √(2/n) ≈ 0.0032 for the variance; 0.02 is over six of them.
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.02, "{mean} {var}");
        let mut counts = [0usize; 5];
        for _ in 0..50_000 {
            counts[rng.below(5) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (9_300..10_700).contains(&c)), "{counts:?}");
    }

    #[test]
    fn keep_masks_read_four_lanes_per_draw_at_the_given_rate() {
        let mut mask = [0.0f32; 6];
        fill_keep_mask(&mut mask, &mut Rng::new(9), 1 << 15, 2.0);
        let mut rng = Rng::new(9);
        let draws = [rng.next_u64(), rng.next_u64()];
        let expected: Vec<f32> = (0..6)
            .map(|i| if (draws[i / 4] >> (16 * (i % 4))) & 0xFFFF >= 1 << 15 { 2.0 } else { 0.0 })
            .collect();
        assert_eq!(mask.to_vec(), expected);

        // A quarter dropped: the count's standard deviation is about 137,
        // so ±1000 is over seven of them.
        let mut large = vec![0.0f32; 100_000];
        fill_keep_mask(&mut large, &mut Rng::new(3), 1 << 14, 1.0);
        let kept = large.iter().filter(|&&m| m == 1.0).count();
        assert!((74_000..76_000).contains(&kept), "{kept}");
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut items: Vec<u32> = (0..100).collect();
        Rng::new(3).shuffle(&mut items);
        assert_ne!(items, (0..100).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    }
}
