//! The shift of a whole run: how far the rows of NEW moved against BASE together, and how far
//! each row moved relative to the rest of its run.
//!
//! Two runs of identical code on one VM often differ as a whole — every row 8% slower after an
//! hour of heavy load, none of it in the code — and a change every kernel shares (a compiler
//! flag, a common helper) moves a whole run as well. One pair of runs cannot tell the two
//! apart. So [`crate::compare`] judges a row by how far it moved *relative to the rest of the
//! run*, and reports the run's own shift, with its interval, on its own.
//!
//! On the log scale, with `dᵢ = ln(new ÷ base)` of the `n` judged rows (not contended, samples
//! not identical, intervals bounded), each with its interval's standard deviation `sᵢ` (its two
//! medians' errors and the floor, [`crate::compare::judge`]) and noise floor `σᵢ`:
//!
//! - the shift `c = median(dᵢ)`: a few rows that really changed barely move it;
//! - the rows' scatter around it `τ = 1.4826 · MAD(dᵢ)` ([`robust_sd`]);
//! - the error of `c` as an estimate from the rows, `e = √(π/2) · max(τ, median sᵢ) / √n`;
//! - its 99% interval `exp(c ± t·√(e² + 2·median σᵢ²))`: the estimate's error and the floor
//!   between runs, which is how far identical runs' rows move, together ones included;
//! - a row's move relative to the run, `exp(dᵢ − c ± t·√(max(sᵢ², τ²) + e²))`: the row must stand
//!   out from its own noise *and* from how far the rows of this very pair scattered, so a run
//!   whose rows moved unevenly (memory-bound rows more than compute-bound ones) calls none of
//!   them different.
//!
//! `t` is the largest of the rows' quantiles (Student's t with the floor's degrees of freedom).
//! Nothing is estimated from fewer than [`MIN_ROWS`] judged rows: a median of three says little
//! about what the rest of a run did.

use serde::Serialize;

use crate::stats::{median, robust_sd};

/// The fewest judged rows a run's shift is estimated from.
pub const MIN_ROWS: usize = 5;

/// One judged row: `d = ln(new ÷ base)`, its standard deviation `sd` (floor included), its
/// noise floor `floor` (`σ`) and its interval's `quantile`.
#[derive(Clone, Copy, Debug)]
pub struct RowMove {
    pub d: f64,
    pub sd: f64,
    pub floor: f64,
    pub quantile: f64,
}

/// The shift of a whole run (see the module header).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RunShift {
    /// `exp(c)`: new ÷ base of the run as a whole (above 1 is slower).
    pub ratio: f64,
    /// Its 99% interval.
    pub ratio_low: f64,
    pub ratio_high: f64,
    /// `τ`: the robust spread of the rows' `ln(new ÷ base)` around `c`.
    pub scatter: f64,
    /// `e`: the standard error of `c` as an estimate from the rows, on the log scale.
    pub error: f64,
    /// The rows it was estimated from.
    pub rows: usize,
}

impl RunShift {
    /// The run's shift from its judged rows; `None` for fewer than [`MIN_ROWS`].
    pub fn estimate(rows: &[RowMove]) -> Option<Self> {
        let n = rows.len();
        if n < MIN_ROWS {
            return None;
        }
        let d: Vec<f64> = rows.iter().map(|r| r.d).collect();
        let c = median(&mut d.clone());
        let scatter = robust_sd(&d);
        let own = median(&mut rows.iter().map(|r| r.sd).collect::<Vec<_>>());
        let error = (std::f64::consts::PI / 2.0).sqrt() * scatter.max(own) / (n as f64).sqrt();
        let floor = median(&mut rows.iter().map(|r| r.floor).collect::<Vec<_>>());
        let t = rows.iter().map(|r| r.quantile).fold(0.0, f64::max);
        let half = t * (error * error + 2.0 * floor * floor).sqrt();
        Some(Self {
            ratio: c.exp(),
            ratio_low: (c - half).exp(),
            ratio_high: (c + half).exp(),
            scatter,
            error,
            rows: n,
        })
    }

    /// A row's `new ÷ base` relative to the run's shift and its 99% interval (see the module
    /// header).
    pub fn relative(&self, row: &RowMove) -> (f64, (f64, f64)) {
        let d = row.d - self.ratio.ln();
        let half = row.quantile * (row.sd.max(self.scatter).powi(2) + self.error.powi(2)).sqrt();
        (d.exp(), ((d - half).exp(), (d + half).exp()))
    }

    /// Did the whole run surely move: does its interval leave 1?
    pub fn moved(&self) -> bool {
        self.ratio_low > 1.0 || self.ratio_high < 1.0
    }

    /// Is the whole run surely slower by more than `threshold` (0.05 is 5%)?
    pub fn slower_beyond(&self, threshold: f64) -> bool {
        self.ratio_low > 1.0 + threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(d: &[f64]) -> Vec<RowMove> {
        d.iter().map(|&d| RowMove { d, sd: 0.01, floor: 0.005, quantile: 2.5 }).collect()
    }

    #[test]
    fn the_shift_is_the_median_and_one_changed_row_stands_out_from_it() {
        // Nine rows 8% slower within ±0.5%, one 10% slower than that.
        let mut d: Vec<f64> = (0..9).map(|i| 1.08f64.ln() + 0.001 * (i as f64 - 4.0)).collect();
        d.push((1.08f64 * 1.10).ln());
        let shift = RunShift::estimate(&rows(&d)).expect("ten rows");
        assert!((shift.ratio - 1.08).abs() < 1e-3, "{shift:?}");
        // c = ln 1.08 + 0.0005 (the median of ten); e = √(π/2)·0.01/√10 = 0.003963 (the rows' own
        // 1% exceeds their scatter); half = 2.5·√(e² + 2·0.005²) = 0.02026.
        assert!((shift.error - 0.003963).abs() < 1e-5, "{shift:?}");
        assert!((shift.ratio_low.ln() - (1.08f64.ln() + 0.0005 - 0.02026)).abs() < 1e-4, "{shift:?}");
        assert!(shift.moved() && shift.slower_beyond(0.05) && !shift.slower_beyond(0.08));
        let (ratio, (low, _)) = shift.relative(&rows(&d)[9]);
        assert!((ratio - 1.10).abs() < 2e-3 && low > 1.05, "{ratio} {low}");
        assert_eq!(RunShift::estimate(&rows(&d[..4])), None, "four rows are too few");
    }

    #[test]
    fn rows_that_scatter_widely_widen_every_relative_interval() {
        // Rows moved by their own ±15%: the scatter, not each row's 1%, sets the interval.
        let d: Vec<f64> = [1.15, 0.85, 1.1, 0.9, 1.0, 1.05, 0.95, 1.2].iter().map(|r: &f64| r.ln()).collect();
        let shift = RunShift::estimate(&rows(&d)).expect("eight rows");
        assert!(shift.scatter > 0.1, "{shift:?}");
        let (_, (low, high)) = shift.relative(&rows(&d)[7]);
        assert!(low < 1.0 && high > 1.0, "a 1.2× row among rows this scattered is not different: {low} {high}");
        // Half-width 2.5·√(τ² + e²) = 0.39 with τ = 0.142; the row's own 1% alone would give 0.16.
        assert!((high / low).ln() > 0.7, "{low} {high}");
    }
}
