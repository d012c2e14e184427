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
    /// `len` words, cache-line aligned, holding whatever they held ([`pack_into`] writes every
    /// word, the padding included, so they are never zeroed first: for a panel shared by the
    /// threads that would be serial work as large as the packing).
    pub fn reset(&mut self, len: usize) -> &mut [u32] {
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
    let out = buf.reset(lanes.len().div_ceil(width) * depth.len().div_ceil(2) * width);
    pack_into(panel, lanes, depth, width, out);
}

/// [`pack`] into `out`, which holds exactly `⌈lanes/width⌉·⌈depth/2⌉·width` words (their prior
/// contents do not matter: every word is written).
pub fn pack_into(panel: Panel<'_>, lanes: Range<usize>, depth: Range<usize>, width: usize, out: &mut [u32]) {
    let pairs = depth.len().div_ceil(2);
    debug_assert_eq!(out.len(), lanes.len().div_ceil(width) * pairs * width);
    for (s, sliver) in out.chunks_exact_mut(pairs * width).enumerate() {
        let first = lanes.start + s * width;
        let used = width.min(lanes.end - first);
        if used < width {
            // The padding lanes of a partial sliver are zeros (so are their products).
            sliver.fill(0);
        }
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

/// Depths contiguous: each lane's run of depths, two at a time, into its column of the sliver —
/// a transpose of lanes × pairs words into pairs × lanes. Whole groups of 8 lanes × 8 pairs go
/// through an AVX2 8 × 8 transpose of 32-bit words where the CPU has AVX2; the rest word by word.
fn copy_pairs(panel: Panel<'_>, lanes: Range<usize>, depth: Range<usize>, width: usize, sliver: &mut [u32]) {
    debug_assert_eq!(panel.depth_stride, 1);
    let (lanes_done, pairs_done) = copy_pairs_blocks(panel, lanes.clone(), depth.clone(), width, sliver);
    for (l, lane) in lanes.enumerate() {
        let run = &panel.data[lane * panel.lane_stride + depth.start..][..depth.len()];
        let pairs = run.chunks_exact(2);
        if let [last] = pairs.remainder() {
            sliver[(run.len() / 2) * width + l] = u32::from(*last);
        }
        // Lanes of the whole groups have their first `pairs_done` pairs in place already.
        let skip = if l < lanes_done { pairs_done } else { 0 };
        for (q, pair) in pairs.enumerate().skip(skip) {
            sliver[q * width + l] = u32::from(pair[0]) | (u32::from(pair[1]) << 16);
        }
    }
}

/// The whole 8 × 8 groups of [`copy_pairs`] (lanes in multiples of 8 from the sliver's first,
/// pairs in multiples of 8 from the depth's first), by AVX2: how many lanes and pairs it covered.
fn copy_pairs_blocks(
    panel: Panel<'_>,
    lanes: Range<usize>,
    depth: Range<usize>,
    width: usize,
    sliver: &mut [u32],
) -> (usize, usize) {
    let (lane_groups, pair_groups) = (lanes.len() / 8, depth.len() / 16);
    #[cfg(target_arch = "x86_64")]
    if lane_groups > 0 && pair_groups > 0 && width.is_multiple_of(8) && is_x86_feature_detected!("avx2") {
        for lg in 0..lane_groups {
            for pg in 0..pair_groups {
                let first = lanes.start + 8 * lg;
                let src = &panel.data[first * panel.lane_stride + depth.start + 16 * pg..];
                // Rows 0..8 of the group, 16 values each, lie inside the panel: the last starts at
                // 7·lane_stride and the lanes and depths are in range.
                debug_assert!(src.len() >= 7 * panel.lane_stride + 16);
                let dst = &mut sliver[16 * pg / 2 * width + 8 * lg..];
                debug_assert!(dst.len() >= 7 * width + 8);
                // SAFETY: AVX2 was detected; the reads and writes stay inside `src` and `dst` (the
                // asserts above, which the loop bounds guarantee).
                unsafe { x86::transpose_8x8(src.as_ptr(), panel.lane_stride, dst.as_mut_ptr(), width) };
            }
        }
        return (8 * lane_groups, 8 * pair_groups);
    }
    let _ = (panel, width, sliver);
    (0, 0)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `dst[q·dst_stride + l] = word q of row l` for 8 rows of 8 32-bit words (16 bf16 values
    /// each, row `l` at `src + l·src_stride` values), the classic unpack / unpack / lane-permute
    /// 8 × 8 transpose.
    ///
    /// # Safety
    /// AVX2; the 8 rows of 16 `u16` are readable and the 8 runs of 8 `u32` writable.
    #[target_feature(enable = "avx2")]
    pub unsafe fn transpose_8x8(src: *const u16, src_stride: usize, dst: *mut u32, dst_stride: usize) {
        // SAFETY: the caller's contract covers every load and store below.
        unsafe {
            let r: [__m256i; 8] = std::array::from_fn(|l| _mm256_loadu_si256(src.add(l * src_stride).cast()));
            let t: [__m256i; 8] = std::array::from_fn(|i| {
                let (a, b) = (r[2 * (i / 2)], r[2 * (i / 2) + 1]);
                if i % 2 == 0 { _mm256_unpacklo_epi32(a, b) } else { _mm256_unpackhi_epi32(a, b) }
            });
            // u[j]: rows 4·(j/4)..+4, words (j%4, j%4 + 4) of each 128-bit half.
            let u: [__m256i; 8] = std::array::from_fn(|j| {
                let base = 4 * (j / 4);
                let (lo, hi) = if j % 4 < 2 { (t[base], t[base + 2]) } else { (t[base + 1], t[base + 3]) };
                if j % 2 == 0 { _mm256_unpacklo_epi64(lo, hi) } else { _mm256_unpackhi_epi64(lo, hi) }
            });
            for q in 0..4 {
                let low = _mm256_permute2x128_si256::<0x20>(u[q], u[q + 4]);
                let high = _mm256_permute2x128_si256::<0x31>(u[q], u[q + 4]);
                _mm256_storeu_si256(dst.add(q * dst_stride).cast(), low);
                _mm256_storeu_si256(dst.add((q + 4) * dst_stride).cast(), high);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every word of a packed sliver against the module header's formula, both reads, odd depths
    /// and partial slivers, into a reused buffer; the second matrix is large enough for the 8 × 8 blocks of the
    /// depth-contiguous read (at odd offsets and an odd lane stride), with remainders on both sides.
    #[test]
    fn slivers_hold_pairs_of_consecutive_depths_zero_padded() {
        let cases = [
            (13, 7, vec![(0..13, 0..7, 8), (3..12, 2..7, 4), (5..6, 1..3, 8)]),
            (21, 41, vec![(0..21, 0..41, 8), (3..20, 2..39, 8), (1..18, 1..34, 32), (0..16, 0..32, 32)]),
        ];
        for (lanes_n, depth_n, ranges) in cases {
            let values: Vec<u16> = (0..lanes_n * depth_n).map(|i| 1 + i as u16).collect();
            // The same matrix (lane l, depth p) = values[l·depth_n + p], stored both ways.
            let transposed: Vec<u16> =
                (0..depth_n * lanes_n).map(|i| values[(i % lanes_n) * depth_n + i / lanes_n]).collect();
            let panels = [
                Panel { data: &values, lane_stride: depth_n, depth_stride: 1 },
                Panel { data: &transposed, lane_stride: 1, depth_stride: lanes_n },
            ];
            for panel in panels {
                for (lanes, depth, width) in ranges.clone() {
                    // A buffer full of garbage, as one reused between products is.
                    let mut buf = Packed::default();
                    buf.reset(4096).fill(u32::MAX);
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
                                let got = words[(s * pairs + q) * width + l];
                                assert_eq!(got, want, "{panel:?} {lanes:?} {depth:?} sliver {s} pair {q} lane {l}");
                            }
                        }
                    }
                }
            }
        }
    }
}
