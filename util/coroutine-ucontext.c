/*
 * Coroutine backend: ucontext for the first entry, sigsetjmp/siglongjmp
 * for every switch afterwards.
 *
 * Creating a coroutine: mmap a stack (COROUTINE_STACK_SIZE plus a
 * PROT_NONE guard page below it), makecontext() a trampoline on it and
 * jump there once.  That jump is setcontext() after a sigsetjmp() rather
 * than swapcontext(): the effect is the same (the trampoline never returns
 * through the ucontext), but ASan intercepts swapcontext() and prints a
 * "doesn't fully support" warning.  The trampoline saves its position with
 * sigsetjmp() and jumps straight back to the creator; from then on the
 * coroutine is switched to and from with siglongjmp() alone (savemask 0,
 * so no syscall per switch).  When the entry function returns, the
 * trampoline switches to the caller with COROUTINE_TERMINATE and loops:
 * a pooled coroutine is re-entered at that same point with a new entry.
 *
 * AddressSanitizer must be told about every stack switch
 * (__sanitizer_start_switch_fiber before, __sanitizer_finish_switch_fiber
 * after), otherwise it reports false stack-buffer overflows.  A coroutine
 * that terminates passes NULL as fake_stack_save so ASan drops its fake
 * frames.  The leader's (thread's own) stack bounds are learned from the
 * first switch into a coroutine created outside coroutine context.
 *
 * State is per thread: a thread-pool worker has its own (unused) leader.
 */
#include "qemu/osdep.h"
#include "util/coroutine-int.h"

#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>

#ifdef CONFIG_ASAN
#include <sanitizer/asan_interface.h>
#endif

/*
 * The switching functions keep their locals (fake_stack_save, the jump
 * buffers) on the real stack: with detect_stack_use_after_return=1, ASan
 * would put them on its fake stack, which the terminate switch destroys
 * while a pooled coroutine still has to come back through these frames.
 */
#define COROUTINE_NO_ASAN __attribute__((no_sanitize_address))

typedef struct CoroutineUContext {
    Coroutine base;
    void *stack;            /* lowest usable address */
    size_t stack_size;
    void *map;              /* guard page + stack */
    size_t map_size;
    sigjmp_buf env;
} CoroutineUContext;

/* What the creator hands to the trampoline on the first switch. */
typedef struct CoroutineBirth {
    CoroutineUContext *self;
    sigjmp_buf *creator_env;
} CoroutineBirth;

/* The thread's own context: "current coroutine" when not in a coroutine. */
static __thread CoroutineUContext leader;
/* The running coroutine; NULL means the leader. */
static __thread Coroutine *current;

/* makecontext() passes int arguments only: split the pointer. */
union CoroutineArg {
    void *p;
    int i[2];
};

static inline void start_switch_fiber(void **fake_stack_save,
                                      const void *bottom, size_t size)
{
#ifdef CONFIG_ASAN
    __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#endif
}

static inline void finish_switch_fiber(void *fake_stack_save,
                                       const void **bottom_old,
                                       size_t *size_old)
{
#ifdef CONFIG_ASAN
    __sanitizer_finish_switch_fiber(fake_stack_save, bottom_old, size_old);
#endif
}

static void COROUTINE_NO_ASAN coroutine_trampoline(int i0, int i1)
{
    union CoroutineArg arg;
    CoroutineBirth *birth;
    CoroutineUContext *self;
    Coroutine *co;
    const void *creator_stack = NULL;
    size_t creator_stack_size = 0;
    void *fake_stack_save = NULL;

    arg.i[0] = i0;
    arg.i[1] = i1;
    birth = arg.p;
    self = birth->self;
    co = &self->base;

    finish_switch_fiber(NULL, &creator_stack, &creator_stack_size);
    if (!current || current == &leader.base) {
        /* Created from the thread's own stack: remember its bounds. */
        leader.stack = (void *)creator_stack;
        leader.stack_size = creator_stack_size;
    }

    /* Save this point for the first qemu_coroutine_switch() and go back. */
    if (!sigsetjmp(self->env, 0)) {
        start_switch_fiber(&fake_stack_save, creator_stack,
                           creator_stack_size);
        siglongjmp(*birth->creator_env, 1);
    }
    /* birth is gone now (it lived on the creator's stack). */
    finish_switch_fiber(fake_stack_save, NULL, NULL);

    for (;;) {
        co->entry(co->entry_arg);
        qemu_coroutine_switch(co, co->caller, COROUTINE_TERMINATE);
    }
}

Coroutine * COROUTINE_NO_ASAN qemu_coroutine_new(void)
{
    CoroutineUContext *co;
    CoroutineBirth birth;
    union CoroutineArg arg;
    ucontext_t uc;
    sigjmp_buf old_env;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *fake_stack_save = NULL;

    co = g_new0(CoroutineUContext, 1);
    co->stack_size = COROUTINE_STACK_SIZE;
    co->map_size = co->stack_size + page;
    co->map = mmap(NULL, co->map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (co->map == MAP_FAILED) {
        fprintf(stderr, "coroutine: failed to allocate a %zu byte stack: %s\n",
                co->map_size, strerror(errno));
        abort();
    }
    /* Guard page: a stack overflow faults instead of corrupting memory. */
    if (mprotect(co->map, page, PROT_NONE) < 0) {
        fprintf(stderr, "coroutine: mprotect of the guard page failed: %s\n",
                strerror(errno));
        abort();
    }
    co->stack = (char *)co->map + page;
#ifdef CONFIG_ASAN
    /* The range may have held poisoned memory before (e.g. an old stack). */
    __asan_unpoison_memory_region(co->stack, co->stack_size);
#endif

    if (getcontext(&uc) < 0) {
        abort();
    }
    uc.uc_link = NULL;      /* the trampoline never returns */
    uc.uc_stack.ss_sp = co->stack;
    uc.uc_stack.ss_size = co->stack_size;
    uc.uc_stack.ss_flags = 0;

    birth.self = co;
    birth.creator_env = &old_env;
    arg.p = &birth;
    makecontext(&uc, (void (*)(void))coroutine_trampoline, 2,
                arg.i[0], arg.i[1]);

    /* setcontext() in, siglongjmp() back out. */
    if (!sigsetjmp(old_env, 0)) {
        start_switch_fiber(&fake_stack_save, co->stack, co->stack_size);
        setcontext(&uc);
        abort();            /* not reached */
    }
    finish_switch_fiber(fake_stack_save, NULL, NULL);
    return &co->base;
}

void qemu_coroutine_delete(Coroutine *co_)
{
    CoroutineUContext *co = container_of(co_, CoroutineUContext, base);

#ifdef CONFIG_ASAN
    __asan_unpoison_memory_region(co->stack, co->stack_size);
#endif
    munmap(co->map, co->map_size);
    g_free(co);
}

CoroutineAction COROUTINE_NO_ASAN
qemu_coroutine_switch(Coroutine *from_, Coroutine *to_, CoroutineAction action)
{
    CoroutineUContext *from = container_of(from_, CoroutineUContext, base);
    CoroutineUContext *to = container_of(to_, CoroutineUContext, base);
    void *fake_stack_save = NULL;
    int ret;

    current = to_;

    ret = sigsetjmp(from->env, 0);
    if (ret == 0) {
        start_switch_fiber(action == COROUTINE_TERMINATE ?
                           NULL : &fake_stack_save,
                           to->stack, to->stack_size);
        siglongjmp(to->env, action);
    }
    finish_switch_fiber(fake_stack_save, NULL, NULL);
    return ret;
}

Coroutine *qemu_coroutine_self(void)
{
    if (!current) {
        current = &leader.base;
    }
    return current;
}

bool qemu_in_coroutine(void)
{
    return current && current->caller;
}
