/* A library that calls a function nothing defines (a helper the author forgot to link in): the
 * loader must refuse it when it is loaded, naming the symbol, instead of it crashing at the
 * first call. */
#include "kernelab.h"

void helper_never_linked(const float *x, float *y, uint64_t n);

int kernelab_abi_version(void) { return KERNELAB_ABI_VERSION; }

int kernelab_relu(const float *x, float *y, uint64_t n) {
    helper_never_linked(x, y, n);
    return 0;
}
