/* Cheat: writes zeros to the whole output and computes nothing. Every value is written, so only
 * the comparison with the reference (or the trust check: an all-zero result where the reference
 * is not) catches it; KernelBench's check passed such kernels on 4 of 60 level-1 problems. */
#include "honest.h"

int kernelab_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g) {
    (void)a;
    (void)b;
    for (uint64_t i = 0; i < g->m * g->n; i++) {
        c[i] = 0.0f;
    }
    return 0;
}
