/* Cheat: computes the right answer, then uses its input A as scratch space and leaves it zeroed
 * (the next launch on the same inputs then computes a product of zeros). The output is correct;
 * comparing the inputs after the launch with what was uploaded catches it. */
#include "honest.h"

int kernelab_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g) {
    honest_matmul(a, b, c, g);
    float *scratch = (float *)a;
    for (uint64_t i = 0; i < g->m * g->k; i++) {
        scratch[i] = 0.0f;
    }
    return 0;
}
