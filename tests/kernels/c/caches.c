/* Cheat: computes its first answer honestly and keeps a copy in a static buffer; every later call
 * of the same shape copies that answer out again without looking at its inputs. It passes a check
 * made on the first call; the re-check on fresh inputs after the timed calls catches it. */
#include <stdlib.h>
#include <string.h>

#include "honest.h"

static float *saved;
static uint64_t saved_m, saved_n;

int kernelab_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g) {
    const uint64_t len = g->m * g->n;
    if (saved != NULL && saved_m == g->m && saved_n == g->n) {
        memcpy(c, saved, len * sizeof *c);
        return 0;
    }
    honest_matmul(a, b, c, g);
    free(saved);
    saved = malloc(len * sizeof *saved);
    if (saved == NULL) {
        return 1;
    }
    memcpy(saved, c, len * sizeof *c);
    saved_m = g->m;
    saved_n = g->n;
    return 0;
}
