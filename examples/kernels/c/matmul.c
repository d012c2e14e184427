/* matmul.c: a complete, minimal CPU matmul kernel for kernelab, in plain C.
 *
 *     cc -O3 -march=native -shared -fPIC -I.. -o matmul.so matmul.c
 *     kernelab bench --op matmul --backend cpu --kernel matmul.so
 *
 * C <- alpha * op(A) * op(B) + beta * C, every matrix row-major (see ../kernelab.h). One thread;
 * for each row i of C: acc[0..n) = sum over p of op(A)[i, p] * op(B)[p, :], the inner loop over a
 * row of B (unit stride when B is not transposed), then the row is scaled and written once.
 * beta == 0 never reads C, which holds NaN before a checked launch.
 */
#include <stdlib.h>

#include "kernelab.h"

int kernelab_abi_version(void) { return KERNELAB_ABI_VERSION; }

int kernelab_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g) {
    const uint64_t m = g->m, n = g->n, k = g->k;
    float *acc = malloc(n * sizeof *acc);
    if (acc == NULL) {
        return 1; /* a non-zero return fails the row, with this value */
    }
    for (uint64_t i = 0; i < m; i++) {
        for (uint64_t j = 0; j < n; j++) {
            acc[j] = 0.0f;
        }
        for (uint64_t p = 0; p < k; p++) {
            const float aip = g->trans_a ? a[p * m + i] : a[i * k + p];
            if (g->trans_b) {
                for (uint64_t j = 0; j < n; j++) {
                    acc[j] += aip * b[j * k + p];
                }
            } else {
                const float *brow = b + p * n;
                for (uint64_t j = 0; j < n; j++) {
                    acc[j] += aip * brow[j];
                }
            }
        }
        float *crow = c + i * n;
        for (uint64_t j = 0; j < n; j++) {
            crow[j] = g->beta == 0.0f ? g->alpha * acc[j] : g->alpha * acc[j] + g->beta * crow[j];
        }
    }
    free(acc);
    return 0;
}
