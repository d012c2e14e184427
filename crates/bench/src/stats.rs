//! The statistics behind `kernelab compare`, on the log scale (a ratio of times becomes a
//! difference): the median, and how far one run's median of a row is from the median the same
//! run would give with endless samples (its standard error), robust to outliers and to drift
//! within the run. Every function here sorts, so a row of `n` samples costs `O(n log n)`. And the
//! mean ± sample standard deviation that reports over seeds use.

/// The median of `v` (which it sorts).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `1.4826 · MAD`: the median absolute deviation from the median, scaled to estimate the
/// standard deviation of normally distributed values; untouched by a few outliers.
pub fn robust_sd(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    let m = median(&mut v);
    let mut deviations: Vec<f64> = values.iter().map(|x| (x - m).abs()).collect();
    1.4826 * median(&mut deviations)
}

/// The standard error of `ln(median)` of one run's samples (seconds, in the order taken), the
/// larger of two estimates:
///
/// - independent samples: `√(π/2) · σ / √n`, the large-sample error of a median, with `σ` the
///   robust spread ([`robust_sd`]) of the log samples;
/// - batch medians, for samples that drift within the run: the `b = ⌊√n⌋` consecutive batches'
///   medians of the log samples have a sample standard deviation `s_b`, and the error is
///   `s_b / √b` (from 16 samples on, so that there are at least four batches).
///
/// Infinite for fewer than two samples: one sample says nothing of its spread.
pub fn log_median_se(samples: &[f64]) -> f64 {
    let n = samples.len();
    if n < 2 {
        return f64::INFINITY;
    }
    let logs: Vec<f64> = samples.iter().map(|s| s.ln()).collect();
    let independent = (std::f64::consts::PI / 2.0).sqrt() * robust_sd(&logs) / (n as f64).sqrt();
    if n < 16 {
        return independent;
    }
    let batches = (n as f64).sqrt().floor() as usize;
    let size = n / batches;
    let medians: Vec<f64> = logs.chunks_exact(size).take(batches).map(|c| median(&mut c.to_vec())).collect();
    let mean = medians.iter().sum::<f64>() / batches as f64;
    let variance = medians.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (batches - 1) as f64;
    independent.max((variance / batches as f64).sqrt())
}

/// The two-sided 99% point of the standard normal distribution: `P(|Z| > 2.5758) = 0.01`.
pub const Z99: f64 = 2.575_829_303_548_901;

/// The two-sided 99% point of Student's t with `df` degrees of freedom, `P(|T| > t) = 0.01`: the
/// Cornish-Fisher expansion around [`Z99`],
/// `t ≈ z + (z³ + z)/4ν + (5z⁵ + 16z³ + 3z)/96ν² + (3z⁷ + 19z⁵ + 17z³ − 15z)/384ν³`,
/// within 1% of the exact value from 5 degrees of freedom on, [`Z99`] for infinitely many.
pub fn t99(df: f64) -> f64 {
    let z = Z99;
    if !df.is_finite() {
        return z;
    }
    let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
    z + (z3 + z) / (4.0 * df)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df * df)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * df.powi(3))
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
    fn the_t_quantile_matches_tables() {
        // Two-sided 99% points of Student's t (any statistics table).
        for (df, want) in [(5.0, 4.032), (8.0, 3.355), (13.0, 3.012), (30.0, 2.750), (120.0, 2.617)] {
            assert!((t99(df) / want - 1.0).abs() < 0.01, "t99({df}) = {}, tables say {want}", t99(df));
        }
        assert_eq!(t99(f64::INFINITY), Z99);
    }

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
    fn medians_and_robust_spreads() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
        // |x − 3| = 2, 1, 0, 1, 97: MAD 1.
        assert!((robust_sd(&[1.0, 2.0, 3.0, 4.0, 100.0]) - 1.4826).abs() < 1e-12);
    }

    #[test]
    fn the_error_of_a_median_shrinks_with_the_samples_and_grows_with_drift() {
        // Alternating 1 and 1.1 (ln 1.1 = 0.0953): MAD of the logs is 0.0477 (half of them
        // 0.0477 from the median, which lies between) → σ = 0.0707, error 1.2533·σ/√n.
        let alternating = |n: usize| -> Vec<f64> { (0..n).map(|i| if i % 2 == 0 { 1.0 } else { 1.1 }).collect() };
        let se8 = log_median_se(&alternating(8));
        let sigma = 1.4826 * 1.1f64.ln() / 2.0;
        assert!((se8 - 1.253_314 * sigma / 8f64.sqrt()).abs() < 1e-5, "{se8}");
        let se64 = log_median_se(&alternating(64));
        assert!((se64 - se8 / 8f64.sqrt()).abs() < 1e-9, "eight times the samples, √8 times less error");
        // The same values, but the run's second half 10% slower than its first: the spread of
        // the values is the same, but the eight batches' medians are 0 or ln 1.1, and their
        // error, (ln 1.1 / 2) / √7, is what the median is really unsure of.
        let drifting: Vec<f64> = (0..64).map(|i| if i < 32 { 1.0 } else { 1.1 }).collect();
        let se_drift = log_median_se(&drifting);
        assert!((se_drift - 1.1f64.ln() / 2.0 / 7f64.sqrt()).abs() < 1e-9, "{se_drift}");
        assert!(se_drift > 1.6 * se64, "{se_drift} vs {se64}");
        assert_eq!(log_median_se(&[1.0]), f64::INFINITY);
        assert_eq!(log_median_se(&[2.0; 40]), 0.0);
    }
}
