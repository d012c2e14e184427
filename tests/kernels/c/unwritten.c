/* Cheat: returns at once and writes nothing, so the output still holds whatever was in it (the
 * poison before a checked launch, an earlier variant's answer in a reused buffer). */
#include "honest.h"

int kernelab_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g) {
    (void)a;
    (void)b;
    (void)c;
    (void)g;
    return 0;
}
