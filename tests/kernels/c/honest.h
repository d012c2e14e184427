/* honest.h: a correct matmul that the cheat fixtures of this folder build on, so that each of
 * them differs from an honest kernel in its one cheat only. Included, not compiled on its own.
 * C <- alpha * op(A) * op(B) + beta * C (see examples/kernels/kernelab.h); beta == 0 never reads C.
 */
#ifndef KERNELAB_TEST_HONEST_H
#define KERNELAB_TEST_HONEST_H

#include "kernelab.h"

int kernelab_abi_version(void) { return KERNELAB_ABI_VERSION; }

static void honest_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g) {
    for (uint64_t i = 0; i < g->m; i++) {
        for (uint64_t j = 0; j < g->n; j++) {
            float acc = 0.0f;
            for (uint64_t p = 0; p < g->k; p++) {
                const float x = g->trans_a ? a[p * g->m + i] : a[i * g->k + p];
                const float y = g->trans_b ? b[j * g->k + p] : b[p * g->n + j];
                acc += x * y;
            }
            float *out = c + i * g->n + j;
            *out = g->beta == 0.0f ? g->alpha * acc : g->alpha * acc + g->beta * *out;
        }
    }
}

#endif
