/* kernelab.h: the C ABI of a CPU kernel that kernelab loads from a shared library at run time.
 *
 *     cc -O3 -march=native -shared -fPIC -o my.so my.c
 *     kernelab bench --op softmax --backend cpu --kernel my.so
 *
 * A library exports `kernelab_abi_version` (returning KERNELAB_ABI_VERSION) and one function per
 * op it implements, named kernelab_<op> as declared below; `--kernel my.so:NAME` runs a function
 * of another name (same signature as its op's). The row is named after the file (`my.so`).
 *
 * The calling convention is the one kernelab's built-in CPU kernels receive:
 *   - every matrix is f32, row-major and contiguous; every size is a count of values;
 *   - `const` pointers are inputs: read them, never write them (kernelab checks that they are
 *     unchanged afterwards);
 *   - the output pointer is the output exactly: write every value of it and nothing outside it
 *     (kernelab keeps guard zones before and after every buffer and names a write into them);
 *     it holds NaN before a checked launch, so an unwritten value fails the check;
 *   - no two pointers overlap and none is NULL (a launch with nothing to write makes no call);
 *   - return 0 on success; any other value is a failure that the row reports with the value;
 *   - every thread the call starts must be done when it returns: kernelab times the call, and
 *     reads the output as soon as it returns;
 *   - each call computes from the inputs it is given now: a kernel that reuses an earlier answer
 *     fails the re-check on fresh inputs that follows the timed calls.
 * kernelab loads a private copy of the library (so the code it runs is the exact bytes whose
 * SHA-256 the report carries): link its own dependencies by name or absolute path, not $ORIGIN.
 */
#ifndef KERNELAB_H
#define KERNELAB_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KERNELAB_ABI_VERSION 1

/* Returns KERNELAB_ABI_VERSION: the version of this file the library was written against. */
int kernelab_abi_version(void);

/* matmul: C <- alpha * op(A) * op(B) + beta * C, with op(A) m x k and op(B) k x n. With trans_a,
 * `a` holds A as k x m (op(A) = A^T); with trans_b, `b` holds B as n x k. beta == 0 overwrites C
 * without reading it (C holds NaN then); otherwise C is read and accumulated into. */
struct kernelab_gemm {
    uint64_t m, n, k;
    uint32_t trans_a, trans_b; /* 0 or 1 */
    float alpha, beta;
};
int kernelab_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g);

/* Elementwise ops over n values. */
/* relu: y[i] = max(0, x[i]). */
int kernelab_relu(const float *x, float *y, uint64_t n);
/* relu_backward: dx[i] = x[i] > 0 ? dy[i] : 0. */
int kernelab_relu_backward(const float *x, const float *dy, float *dx, uint64_t n);
/* add: y[i] = a[i] + b[i]. */
int kernelab_add(const float *a, const float *b, float *y, uint64_t n);

/* Row-wise ops over a rows x cols matrix, every row independent. */
/* softmax: y[r, :] = exp(x[r, :] - max) / sum(exp(x[r, :] - max)), max = the row's largest x. */
int kernelab_softmax(const float *x, float *y, uint64_t rows, uint64_t cols);
/* log_softmax: y[r, :] = x[r, :] - max - ln(sum(exp(x[r, :] - max))). */
int kernelab_log_softmax(const float *x, float *y, uint64_t rows, uint64_t cols);
/* softmax_backward, from the softmax output y: dx = y * (dy - sum_c(dy * y)) per row. */
int kernelab_softmax_backward(const float *y, const float *dy, float *dx, uint64_t rows, uint64_t cols);
/* log_softmax_backward, from the log-softmax output y: dx = dy - exp(y) * sum_c(dy) per row. */
int kernelab_log_softmax_backward(const float *y, const float *dy, float *dx, uint64_t rows, uint64_t cols);
/* bias_add: y[r, c] = x[r, c] + bias[c]; bias holds cols values. */
int kernelab_bias_add(const float *x, const float *bias, float *y, uint64_t rows, uint64_t cols);
/* bias_relu: y[r, c] = max(0, x[r, c] + bias[c]); bias holds cols values. */
int kernelab_bias_relu(const float *x, const float *bias, float *y, uint64_t rows, uint64_t cols);

#ifdef __cplusplus
}
#endif

#endif /* KERNELAB_H */
