/* Cheat: computes the right answer, then writes one value past the end of its output (an
 * off-by-one `<=` in a store loop, or a tile that overhangs the last row). The values checked
 * are all correct; the guard zone after the output is what catches it, at offset +0. */
#include "honest.h"

int kernelab_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g) {
    honest_matmul(a, b, c, g);
    c[g->m * g->n] = c[g->m * g->n - 1];
    return 0;
}
