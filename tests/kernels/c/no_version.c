/* Not a kernelab library: a correct relu, but no kernelab_abi_version, so loading it must fail
 * with an error that says what to define. */
#include <stdint.h>

int kernelab_relu(const float *x, float *y, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    }
    return 0;
}
