//! Pair-interleaved packing for `vdpbf16ps`, which multiplies two bf16 values per 32-bit lane and
//! adds both products into that lane's f32: each 32-bit word of a packed sliver holds two
//! consecutive depths of one row (of `op(A)`) or one column (of `op(B)`), the lower depth in the
//! low half.
//!
//! A sliver of width `w` (the kernel's `MR` for `A`, `NR` for `B`) over `kc` depths holds
//! `⌈kc/2⌉ · w` words: `packed[(s·⌈kc/2⌉ + q)·w + l] = op(X)[l₀ + s·w + l, p₀ + 2q]
//! | op(X)[l₀ + s·w + l, p₀ + 2q + 1] << 16`, where `X` is read as lanes × depth. Lanes past the
//! matrix's edge and the second half of the last pair of an odd depth are zeros (bf16 +0), so
//! every sliver is full and the kernel needs no edge cases.
//!
//! Both operands, every transpose, are one of two reads of a [`Panel`]:
//! - lanes contiguous (`op(A)` of a transposed `A`, `op(B)` of a plain `B`): two rows of depth at
//!   a time, interleaved — `lo | hi << 16` over whole rows, which the compiler vectorizes;
//! - depths contiguous (a plain `A`, a transposed `B`): each lane's pairs are already adjacent,
//!   so a pair is one 32-bit word copied to its place in the lane's column of the sliver.

use std::ops::Range;

/// A bf16 operand seen as lanes × depth: element `(l, p)` is `data[l·lane_stride + p·depth_stride]`;
/// one of the two strides is 1.
#[derive(Clone, Copy, Debug)]
pub struct Panel<'a> {
    pub data: &'a [u16],
    pub lane_stride: usize,
    pub depth_stride: usize,
}

/// A packing buffer of 32-bit pair words whose contents start on a 64-byte cache line.
#[derive(Debug, Default)]
pub struct Packed(Vec<u32>);

impl Packed {
    /// `len` zeroed words, cache-line aligned.
    fn reset(&mut self, len: usize) -> &mut [u32] {
        self.0.clear();
        self.0.resize(len + 16, 0);
        let offset = self.0.as_ptr().align_offset(64).min(16);
        &mut self.0[offset..offset + len]
    }

    /// The words written by the last [`pack`].
    pub fn words(&self, len: usize) -> &[u32] {
        let offset = self.0.as_ptr().align_offset(64).min(16);
        &self.0[offset..offset + len]
    }
}

/// Packs `panel[lanes, depth]` into slivers `width` lanes wide (see the module header).
pub fn pack(panel: Panel<'_>, lanes: Range<usize>, depth: Range<usize>, width: usize, buf: &mut Packed) {
    let pairs = depth.len().div_ceil(2);
    let slivers = lanes.len().div_ceil(width);
    let out = buf.reset(slivers * pairs * width);
    for (s, sliver) in out.chunks_exact_mut(pairs * width).enumerate() {
        let first = lanes.start + s * width;
        let used = width.min(lanes.end - first);
        if panel.lane_stride == 1 {
            interleave_rows(panel, first..first + used, depth.clone(), width, sliver);
        } else {
            copy_pairs(panel, first..first + used, depth.clone(), width, sliver);
        }
    }
}

/// Lanes contiguous: for each pair of depths, the two runs of lanes interleaved into words.
fn interleave_rows(panel: Panel<'_>, lanes: Range<usize>, depth: Range<usize>, width: usize, sliver: &mut [u32]) {
    let used = lanes.len();
    let row = |p: usize| &panel.data[p * panel.depth_stride + lanes.start..][..used];
    for (q, p) in depth.clone().step_by(2).enumerate() {
        let dst = &mut sliver[q * width..q * width + used];
        if p + 1 < depth.end {
            for ((d, &lo), &hi) in dst.iter_mut().zip(row(p)).zip(row(p + 1)) {
                *d = u32::from(lo) | (u32::from(hi) << 16);
            }
        } else {
            dst.iter_mut().zip(row(p)).for_each(|(d, &lo)| *d = u32::from(lo));
        }
    }
}

/// Depths contiguous: each lane's run of depths, two at a time, into its column of the sliver.
fn copy_pairs(panel: Panel<'_>, lanes: Range<usize>, depth: Range<usize>, width: usize, sliver: &mut [u32]) {
    debug_assert_eq!(panel.depth_stride, 1);
    for (l, lane) in lanes.enumerate() {
        let run = &panel.data[lane * panel.lane_stride + depth.start..][..depth.len()];
        let pairs = run.chunks_exact(2);
        if let [last] = pairs.remainder() {
            sliver[(run.len() / 2) * width + l] = u32::from(*last);
        }
        for (q, pair) in pairs.enumerate() {
            sliver[q * width + l] = u32::from(pair[0]) | (u32::from(pair[1]) << 16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every word of a packed sliver against the module header's formula, both reads, odd depths
    /// and partial slivers.
    #[test]
    fn slivers_hold_pairs_of_consecutive_depths_zero_padded() {
        let (lanes_n, depth_n) = (13, 7);
        let values: Vec<u16> = (0..lanes_n * depth_n).map(|i| 1 + i as u16).collect();
        // The same matrix (lane l, depth p) = values[l·depth_n + p], stored both ways.
        let transposed: Vec<u16> =
            (0..depth_n * lanes_n).map(|i| values[(i % lanes_n) * depth_n + i / lanes_n]).collect();
        let panels = [
            Panel { data: &values, lane_stride: depth_n, depth_stride: 1 },
            Panel { data: &transposed, lane_stride: 1, depth_stride: lanes_n },
        ];
        for panel in panels {
            for (lanes, depth, width) in [(0..13, 0..7, 8), (3..12, 2..7, 4), (5..6, 1..3, 8)] {
                let mut buf = Packed::default();
                pack(panel, lanes.clone(), depth.clone(), width, &mut buf);
                let pairs = depth.len().div_ceil(2);
                let slivers = lanes.len().div_ceil(width);
                let words = buf.words(slivers * pairs * width);
                let at = |l: usize, p: usize| {
                    if lanes.contains(&l) && depth.contains(&p) { u32::from(values[l * depth_n + p]) } else { 0 }
                };
                for s in 0..slivers {
                    for q in 0..pairs {
                        for l in 0..width {
                            let (lane, p) = (lanes.start + s * width + l, depth.start + 2 * q);
                            let want = at(lane, p) | (at(lane, p + 1) << 16);
                            assert_eq!(words[(s * pairs + q) * width + l], want, "{panel:?} {lanes:?} {depth:?}");
                        }
                    }
                }
            }
        }
    }
}
