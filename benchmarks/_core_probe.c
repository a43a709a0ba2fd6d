/* The round trip of one cache line between two CPUs, for compare.py's header.
 *
 * Two threads, each pinned to one of the CPUs, hand a counter back and forth through one
 * cache line; the result is the wall time per round trip. On the 2-core development VM it
 * measured 76-141 ns at some moments and 380-490 ns at others, switching within minutes, and
 * every contender's 2-thread rows with large gemms (W) slowed by about a quarter with it: a
 * run's 2-thread figures are read against it. Built by compare.py at run time (gcc), loaded
 * with ctypes; nothing of it is in the package. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <time.h>

static _Alignas(64) volatile int flag;
static int rounds;

static int pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *answer(void *cpu) {
    if (pin(*(int *) cpu) != 0)
        return NULL;
    for (int i = 0; i < rounds; i++) {
        while (__atomic_load_n(&flag, __ATOMIC_ACQUIRE) != 2 * i + 1)
            ;
        __atomic_store_n(&flag, 2 * i + 2, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* Nanoseconds per round trip between cpu_a and cpu_b over n rounds; -1 if a thread could
   not be started or pinned (the calling thread's affinity is restored afterwards). */
double round_trip_ns(int cpu_a, int cpu_b, int n) {
    pthread_t other;
    cpu_set_t saved;
    struct timespec t0, t1;
    double ns;
    rounds = n;
    flag = 0;
    if (pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) != 0 || pin(cpu_a) != 0)
        return -1;
    if (pthread_create(&other, NULL, answer, &cpu_b) != 0) {
        pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        __atomic_store_n(&flag, 2 * i + 1, __ATOMIC_RELEASE);
        long spins = 0;
        while (__atomic_load_n(&flag, __ATOMIC_ACQUIRE) != 2 * i + 2) {
            if (++spins == 100000000L) {           /* the other thread could not be pinned */
                pthread_cancel(other);
                pthread_join(other, NULL);
                pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
                return -1;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(other, NULL);
    pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
    ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
    return ns / n;
}
