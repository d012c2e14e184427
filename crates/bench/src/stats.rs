//! The statistics behind `kernelab compare`: the Mann-Whitney U test (is one set of samples
//! shifted against the other?) and a bootstrap confidence interval of the ratio of medians; and
//! the mean ± sample standard deviation that reports over seeds use.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The two-sided p-value of the Mann-Whitney U test of `a` against `b`, by the normal
/// approximation with a continuity and a tie correction: `z = (|U − n₁n₂/2| − ½) / σ`, where
/// `σ² = n₁n₂/12 · ((n+1) − Σ(t³−t)/(n(n−1)))` over the groups of `t` tied values. 1 when either
/// side is empty or every value ties.
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return 1.0;
    }
    let mut all: Vec<(f64, bool)> = a.iter().map(|&v| (v, true)).chain(b.iter().map(|&v| (v, false))).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let (mut rank_sum_a, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let (t, average_rank) = ((j - i + 1) as f64, (i + j + 2) as f64 / 2.0);
        rank_sum_a += all[i..=j].iter().filter(|(_, from_a)| *from_a).count() as f64 * average_rank;
        ties += t * t * t - t;
        i = j + 1;
    }
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let total = n as f64;
    let variance = n1 * n2 / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = ((u - n1 * n2 / 2.0).abs() - 0.5).max(0.0) / variance.sqrt();
    erfc(z / std::f64::consts::SQRT_2).min(1.0)
}

/// The complementary error function, to about 1e-7 relative (a Chebyshev fit after Numerical
/// Recipes' `erfcc`).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The median of `v` (which it sorts).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// A 95% bootstrap interval of `median(new) / median(base)`: both sides resampled with
/// replacement `resamples` times (seeded, so the same inputs give the same interval), the 2.5th
/// and 97.5th percentiles of the ratios.
pub fn ratio_interval(base: &[f64], new: &[f64], resamples: usize) -> (f64, f64) {
    if base.is_empty() || new.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x6b65_726e_656c_6162);
    let mut draw = |from: &[f64], into: &mut Vec<f64>| {
        into.clear();
        into.extend((0..from.len()).map(|_| from[rng.random_range(0..from.len())]));
        median(into)
    };
    let (mut b, mut n) = (Vec::new(), Vec::new());
    let mut ratios: Vec<f64> = (0..resamples.max(1)).map(|_| draw(new, &mut n) / draw(base, &mut b)).collect();
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

/// The mean `v̄ = Σvᵢ/n` of `v` and its sample standard deviation `√(Σ(vᵢ − v̄)²/(n − 1))`; the
/// deviation is NaN for fewer than two values (one value has no spread), both are NaN for none.
pub fn mean_and_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd =
        if v.len() < 2 { f64::NAN } else { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() };
    (mean, sd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_sd() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, Σ(x − 5)² = 32, sample variance 32/7.
        let (mean, sd) = mean_and_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(mean, 5.0);
        assert!((sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-15, "{sd}");
        let (one, none) = (mean_and_sd(&[3.5]), mean_and_sd(&[]));
        assert!(one.0 == 3.5 && one.1.is_nan(), "{one:?}");
        assert!(none.0.is_nan() && none.1.is_nan(), "{none:?}");
    }

    #[test]
    fn erfc_matches_known_values() {
        for (x, want) in
            [(0.0, 1.0), (0.5, 0.479_500_122), (1.0, 0.157_299_207), (2.0, 0.004_677_735), (-1.0, 1.842_700_793)]
        {
            assert!((erfc(x) - want).abs() < 1e-6, "erfc({x}) = {}", erfc(x));
        }
    }

    #[test]
    fn identical_samples_are_not_different() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!(mann_whitney_p(&a, &a) > 0.9);
        assert_eq!(mann_whitney_p(&[1.0; 8], &[1.0; 8]), 1.0, "all ties");
        let (lo, hi) = ratio_interval(&a, &a, 500);
        assert!(lo <= 1.0 && hi >= 1.0);
    }

    #[test]
    fn a_clear_shift_is_significant() {
        // Two samples of 10 with no overlap: U = 0, the exact two-sided p is 2/C(20,10) ≈ 1.1e-5,
        // the normal approximation about 1.8e-4.
        let a: Vec<f64> = (0..10).map(|i| 1.0 + 0.01 * i as f64).collect();
        let b: Vec<f64> = a.iter().map(|v| 2.0 * v).collect();
        let p = mann_whitney_p(&a, &b);
        assert!(p < 1e-3 && p > 1e-5, "{p}");
        let (lo, hi) = ratio_interval(&a, &b, 1000);
        assert!(lo > 1.9 && hi < 2.1, "({lo}, {hi})");
    }

    #[test]
    fn a_known_textbook_case() {
        // a = 1..5, b = 6..10 interleaved half way: U = 6.5 for a = [1,2,3,4,9], b = [5,6,7,8,10].
        let p = mann_whitney_p(&[1.0, 2.0, 3.0, 4.0, 9.0], &[5.0, 6.0, 7.0, 8.0, 10.0]);
        // z = (|4 − 12.5| − 0.5) / sqrt(25·11/12) = 8 / 4.787 = 1.671 → p = 0.0947.
        assert!((p - 0.0947).abs() < 2e-3, "{p}");
    }
}
