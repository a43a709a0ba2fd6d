# A team of threads for one call's work, and a barrier for its members. cdef extern, nogil.
#
# Design: team_run starts the members' threads when a call begins and joins them when it ends,
# like cbackprop/_threads.py over_rows: no pool outlives a call, so nothing is inherited by a
# fork or shared between two calls running at once. Starting and joining a thread costs some
# tens of microseconds, against the tens of milliseconds of a mini-batch call that uses a team.
# Between barriers a member works some tens of microseconds, less than a sleep and a wake-up
# cost, so the barrier spins (with `pause`), yielding the core after about as long, in case the
# team has more members than the machine has free cores. Where there are no POSIX threads
# (Windows), team_run starts nothing and returns 0, and the caller runs its one-thread path.
cdef extern from *:
    """
    #define CBP_TEAM_MAX 64
    typedef void (*cbp_team_fn)(void *ctx, int member);
    typedef struct {
        int arrived;        /* members at the barrier in this round */
        int round;          /* rounds completed */
        int size;
    } cbp_barrier;

    static void cbp_barrier_init(cbp_barrier *b, int size) {
        b->arrived = 0;
        b->round = 0;
        b->size = size;
    }

    #if defined(_WIN32) || !(defined(__GNUC__) || defined(__clang__))
    static void cbp_barrier_wait(cbp_barrier *b) { (void) b; }
    static int cbp_team_run(int size, cbp_team_fn fn, void *ctx) {
        (void) size; (void) fn; (void) ctx;
        return 0;
    }
    #else
    #include <pthread.h>
    #include <sched.h>
    #include <signal.h>
    #if defined(__x86_64__) || defined(__i386__)
    #include <immintrin.h>
    #define CBP_PAUSE() _mm_pause()
    #else
    #define CBP_PAUSE() ((void) 0)
    #endif
    /* pauses before a waiting member yields its core, some tens of microseconds: about a
       member's work between two barriers. A team of more members than free cores (another
       training started meanwhile) then yields instead of spinning through others' slices. */
    #define CBP_SPINS 2000

    /* Returns once all b->size members have called it; what each wrote before its call is
       seen by all after theirs (the last to arrive releases the round, the others acquire
       it). */
    static void cbp_barrier_wait(cbp_barrier *b) {
        int round = __atomic_load_n(&b->round, __ATOMIC_ACQUIRE);
        unsigned spins = 0;
        if (__atomic_add_fetch(&b->arrived, 1, __ATOMIC_ACQ_REL) == b->size) {
            __atomic_store_n(&b->arrived, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&b->round, round + 1, __ATOMIC_RELEASE);
            return;
        }
        while (__atomic_load_n(&b->round, __ATOMIC_ACQUIRE) == round) {
            if (++spins < CBP_SPINS)
                CBP_PAUSE();
            else
                sched_yield();
        }
    }

    typedef struct {
        cbp_team_fn fn;
        void *ctx;
        int member;
        int *go;            /* 0 until the caller decides: 1 run, -1 do not */
    } cbp_member;

    static void *cbp_member_main(void *p) {
        cbp_member *m = (cbp_member *) p;
        int go;
        while ((go = __atomic_load_n(m->go, __ATOMIC_ACQUIRE)) == 0)
            sched_yield();
        if (go > 0)
            m->fn(m->ctx, m->member);
        return NULL;
    }

    /* Runs fn(ctx, k) for k = 0 .. size - 1 at once, k = 0 on the calling thread, and returns
       1 when all have returned. Returns 0 without running fn when size is out of range or a
       thread cannot be started. The members' threads block every asynchronous signal:
       Python's handlers run on its main thread, which sees the signal's flag when the call
       returns. (A fault in a member is still its own: SIGSEGV and the like stay unblocked,
       so faulthandler reports it.) */
    static int cbp_team_run(int size, cbp_team_fn fn, void *ctx) {
        pthread_t threads[CBP_TEAM_MAX];
        cbp_member members[CBP_TEAM_MAX];
        sigset_t all, old;
        int go = 0, started = 0, k;
        if (size < 1 || size > CBP_TEAM_MAX)
            return 0;
        sigfillset(&all);
        sigdelset(&all, SIGSEGV);
        sigdelset(&all, SIGBUS);
        sigdelset(&all, SIGFPE);
        sigdelset(&all, SIGILL);
        sigdelset(&all, SIGABRT);
        sigdelset(&all, SIGTRAP);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        for (k = 1; k < size; k++) {
            members[k].fn = fn;
            members[k].ctx = ctx;
            members[k].member = k;
            members[k].go = &go;
            if (pthread_create(&threads[k], NULL, cbp_member_main, &members[k]) != 0)
                break;
            started++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        __atomic_store_n(&go, started == size - 1 ? 1 : -1, __ATOMIC_RELEASE);
        if (started == size - 1)
            fn(ctx, 0);
        for (k = 1; k <= started; k++)
            pthread_join(threads[k], NULL);
        return started == size - 1;
    }
    #endif
    """
    enum: CBP_TEAM_MAX
    ctypedef void (*cbp_team_fn)(void* ctx, int member) noexcept nogil
    ctypedef struct cbp_barrier:
        pass
    void cbp_barrier_init(cbp_barrier* b, int size) nogil
    void cbp_barrier_wait(cbp_barrier* b) nogil
    int cbp_team_run(int size, cbp_team_fn fn, void* ctx) nogil
