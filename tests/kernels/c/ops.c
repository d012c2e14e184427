/* Not a cheat: correct kernels of one op for each generic signature of kernelab.h (relu: one
 * input, n values; add: two inputs, n values; log_softmax: one input, rows x cols; bias_add: two
 * inputs, rows x cols), so that a test can check that each signature is called with its
 * arguments in the documented order. Plus `relu_refuses`, a relu that returns 7 (a kernel
 * reporting its own failure), to load as `ops.so:relu_refuses`. */
#include <math.h>

#include "kernelab.h"

int kernelab_abi_version(void) { return KERNELAB_ABI_VERSION; }

int kernelab_relu(const float *x, float *y, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    }
    return 0;
}

int relu_refuses(const float *x, float *y, uint64_t n) {
    (void)x;
    (void)y;
    (void)n;
    return 7;
}

int kernelab_add(const float *a, const float *b, float *y, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        y[i] = a[i] + b[i];
    }
    return 0;
}

int kernelab_log_softmax(const float *x, float *y, uint64_t rows, uint64_t cols) {
    for (uint64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float max = -INFINITY;
        for (uint64_t c = 0; c < cols; c++) {
            max = xr[c] > max ? xr[c] : max;
        }
        double sum = 0.0;
        for (uint64_t c = 0; c < cols; c++) {
            sum += exp((double)(xr[c] - max));
        }
        const float shift = max + (float)log(sum);
        for (uint64_t c = 0; c < cols; c++) {
            y[r * cols + c] = xr[c] - shift;
        }
    }
    return 0;
}

int kernelab_bias_add(const float *x, const float *bias, float *y, uint64_t rows, uint64_t cols) {
    for (uint64_t r = 0; r < rows; r++) {
        for (uint64_t c = 0; c < cols; c++) {
            y[r * cols + c] = x[r * cols + c] + bias[c];
        }
    }
    return 0;
}
