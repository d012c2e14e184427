/* Cheat (a crash): writes through a null pointer, so the process gets SIGSEGV on the first call.
 * Run it in a child process only: the row must fail with the signal and the run go on. */
#include <stddef.h>

#include "honest.h"

int kernelab_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g) {
    (void)a;
    (void)b;
    (void)g;
    volatile float *nowhere = NULL;
    *nowhere = c[0];
    return 0;
}
