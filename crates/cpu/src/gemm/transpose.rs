//! Transposing a block of rows: `dst[p·w + j] = src[j·ld + p]` for `j < w`, `p < k`.
//!
//! The direct path uses it to turn the `Bᵀ` of an NT product (a weight `W` in the forward `x·Wᵀ`)
//! into rows that its broadcast kernel reads with unit stride (see `direct`). On AVX-512 a 16×16
//! block is transposed in registers: sixteen row loads, four rounds of sixteen shuffles
//! (interleave pairs of rows, then pairs of pairs, then move 128-bit lanes twice), sixteen row
//! stores; rows and columns past the last whole block are copied one value at a time.

/// Transposes the `w × k` block of `src` (row stride `ld`) into `dst` (`k × w`, row stride `w`).
pub fn transpose(src: &[f32], ld: usize, w: usize, k: usize, dst: &mut [f32]) {
    assert!(w == 0 || k == 0 || (src.len() >= (w - 1) * ld + k && ld >= k), "source block out of bounds");
    assert!(dst.len() >= w * k, "destination holds {} of {} values", dst.len(), w * k);
    let (whole_w, whole_k) = if crate::simd::has_avx512() { (w - w % 16, k - k % 16) } else { (0, 0) };
    #[cfg(target_arch = "x86_64")]
    if whole_w > 0 && whole_k > 0 {
        // SAFETY: AVX-512F is present (`avx512`), and every 16×16 block lies inside the bounds
        // checked above.
        unsafe { x86::blocks(src, ld, whole_w, whole_k, dst, w) };
    }
    // The edges: rows of `src` past the whole blocks (all of their depth), then the depth past
    // the whole blocks for the rest.
    for j in whole_w..w {
        for p in 0..k {
            dst[p * w + j] = src[j * ld + p];
        }
    }
    for j in 0..whole_w {
        for p in whole_k..k {
            dst[p * w + j] = src[j * ld + p];
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub mod x86 {
    use std::arch::x86_64::*;

    /// Every 16×16 block of the `w × k` block of `src` (both multiples of 16) into `dst`.
    ///
    /// # Safety
    /// AVX-512F is present; `src` holds `(w−1)·ld + k` values and `dst` holds `(k−1)·ldd + w`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn blocks(src: &[f32], ld: usize, w: usize, k: usize, dst: &mut [f32], ldd: usize) {
        for j in (0..w).step_by(16) {
            for p in (0..k).step_by(16) {
                // SAFETY: rows j..j+16 and columns p..p+16 of src, rows p..p+16 and columns
                // j..j+16 of dst, lie inside the slices (the caller's bounds).
                unsafe {
                    let columns = block(src.as_ptr().add(j * ld + p), ld);
                    for (q, &column) in columns.iter().enumerate() {
                        _mm512_storeu_ps(dst.as_mut_ptr().add((p + q) * ldd + j), column);
                    }
                }
            }
        }
    }

    /// The 16 columns of the 16×16 block at `src` (row stride `ld`): lane `r` of column `q` is
    /// `src[r·ld + q]`.
    ///
    /// # Safety
    /// AVX-512F is present, and the block's 16 rows of 16 values lie inside `src`'s allocation.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn block(src: *const f32, ld: usize) -> [__m512; 16] {
        let mut r = [_mm512_setzero_ps(); 16];
        for (i, row) in r.iter_mut().enumerate() {
            // SAFETY: row i of the block (the caller's bounds).
            *row = unsafe { _mm512_loadu_ps(src.add(i * ld)) };
        }
        // Round 1, per 128-bit lane l of rows 2i, 2i+1: [a₀ b₀ a₁ b₁] and [a₂ b₂ a₃ b₃] of columns 4l...
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        // Round 2: u[4g + c], lane l = column 4l + c of rows 4g..4g+4.
        let mut u = [_mm512_setzero_ps(); 16];
        for g in 0..4 {
            let (t0, t1, t2, t3) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
            let pd = |x: __m512| _mm512_castps_pd(x);
            u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t0), pd(t2)));
            u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t0), pd(t2)));
            u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t1), pd(t3)));
            u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t1), pd(t3)));
        }
        // Rounds 3 and 4, for each c: the 4×4 transpose of 128-bit lanes of u[c], u[4 + c],
        // u[8 + c], u[12 + c]; its lane-row l is column 4l + c of all sixteen rows.
        let mut columns = [_mm512_setzero_ps(); 16];
        for c in 0..4 {
            let (v0, v1, v2, v3) = (u[c], u[4 + c], u[8 + c], u[12 + c]);
            let x0 = _mm512_shuffle_f32x4::<0x44>(v0, v1);
            let x1 = _mm512_shuffle_f32x4::<0xEE>(v0, v1);
            let x2 = _mm512_shuffle_f32x4::<0x44>(v2, v3);
            let x3 = _mm512_shuffle_f32x4::<0xEE>(v2, v3);
            let out = [
                _mm512_shuffle_f32x4::<0x88>(x0, x2),
                _mm512_shuffle_f32x4::<0xDD>(x0, x2),
                _mm512_shuffle_f32x4::<0x88>(x1, x3),
                _mm512_shuffle_f32x4::<0xDD>(x1, x3),
            ];
            for (l, &o) in out.iter().enumerate() {
                columns[4 * l + c] = o;
            }
        }
        columns
    }
}

#[cfg(test)]
mod tests {
    use super::transpose;

    #[test]
    fn every_block_and_edge_lands_where_it_belongs() {
        // Whole blocks only, edges only, and both, with a row stride wider than the block.
        for (w, k, ld) in
            [(16, 16, 16), (32, 48, 50), (10, 128, 128), (128, 784, 784), (33, 17, 20), (1, 1, 1), (17, 31, 40)]
        {
            let src: Vec<f32> = (0..w * ld).map(|i| i as f32).collect();
            let mut dst = vec![f32::NAN; w * k];
            transpose(&src, ld, w, k, &mut dst);
            for j in 0..w {
                for p in 0..k {
                    assert_eq!(dst[p * w + j], src[j * ld + p], "w={w} k={k} ld={ld} at row {j}, depth {p}");
                }
            }
        }
    }
}
