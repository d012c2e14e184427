/* softmax.c: a complete, minimal CPU softmax kernel for kernelab, in plain C.
 *
 *     cc -O3 -march=native -shared -fPIC -I.. -o softmax.so softmax.c -lm
 *     kernelab bench --op softmax --backend cpu --kernel softmax.so
 *
 * y[r, :] = exp(x[r, :] - max) / sum(exp(x[r, :] - max)) for every row r of a rows x cols matrix
 * (see ../kernelab.h). Three passes over each row: its largest value (subtracted, so that exp
 * cannot overflow however large the logits), the exponentials and their sum, and the division.
 * One thread.
 */
#include <math.h>

#include "kernelab.h"

int kernelab_abi_version(void) { return KERNELAB_ABI_VERSION; }

int kernelab_softmax(const float *x, float *y, uint64_t rows, uint64_t cols) {
    for (uint64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float max = -INFINITY;
        for (uint64_t c = 0; c < cols; c++) {
            max = xr[c] > max ? xr[c] : max;
        }
        float sum = 0.0f;
        for (uint64_t c = 0; c < cols; c++) {
            yr[c] = expf(xr[c] - max);
            sum += yr[c];
        }
        const float inv = 1.0f / sum;
        for (uint64_t c = 0; c < cols; c++) {
            yr[c] *= inv;
        }
    }
    return 0;
}
