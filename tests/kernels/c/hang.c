/* Cheat (a hang): never returns from its first call (a loop that never ends). Run it in a child
 * process only, under a time limit: the row must fail with the limit and the run go on. */
#include "honest.h"

int kernelab_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g) {
    (void)a;
    (void)b;
    (void)c;
    (void)g;
    volatile uint64_t spins = 0;
    for (;;) {
        spins++;
    }
    return 0;
}
