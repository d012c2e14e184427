/* Cheat: returns at once and leaves the work to a detached thread that writes the (correct)
 * output 50 ms later, so a timer that stops when the call returns measures nothing. Right after
 * the call the output still holds the poison; a check that reads it then (a CPU kernel's threads
 * must be done when it returns) catches it. The thread reads the inputs and writes the output
 * after the call, into buffers the caller may have freed: run it in a child process only. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "honest.h"

struct work {
    const float *a, *b;
    float *c;
    struct kernelab_gemm g;
};

static void *later(void *arg) {
    struct work *w = arg;
    const struct timespec wait = {0, 50 * 1000 * 1000};
    nanosleep(&wait, NULL);
    honest_matmul(w->a, w->b, w->c, &w->g);
    free(w);
    return NULL;
}

int kernelab_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g) {
    struct work *w = malloc(sizeof *w);
    if (w == NULL) {
        return 1;
    }
    *w = (struct work){a, b, c, *g};
    pthread_t thread;
    if (pthread_create(&thread, NULL, later, w) != 0) {
        free(w);
        return 2;
    }
    pthread_detach(thread);
    return 0;
}
