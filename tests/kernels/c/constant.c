/* Cheat: writes one constant (0.5) to the whole output and computes nothing; the trust check
 * refuses a constant result where the reference is not constant. */
#include "honest.h"

int kernelab_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g) {
    (void)a;
    (void)b;
    for (uint64_t i = 0; i < g->m * g->n; i++) {
        c[i] = 0.5f;
    }
    return 0;
}
