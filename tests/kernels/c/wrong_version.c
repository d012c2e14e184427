/* A library written against a future ABI (version 2): loading it must fail and say which
 * version this kernelab speaks. */
#include <stdint.h>

int kernelab_abi_version(void) { return 2; }

int kernelab_relu(const float *x, float *y, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    }
    return 0;
}
