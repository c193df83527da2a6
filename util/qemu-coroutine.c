/*
 * Generic coroutine code: the free-list pool, entering (with the wakeup
 * queue), yielding, and the small helpers that tie coroutines to the loop.
 *
 * Entering: qemu_aio_coroutine_enter() keeps a local list of coroutines to
 * run, initially just the one being entered.  After each switch returns
 * (the coroutine yielded or terminated) the coroutines it woke meanwhile
 * (its wakeup queue) are put at the front of that list and entered in
 * turn, from this same loop.  Hence a coroutine woken by another coroutine
 * starts only after the waker gives up the CPU, never nested inside it.
 *
 * Pool: terminated coroutines go to a per-thread free list of at most
 * COROUTINE_POOL_MAX entries, so creating a coroutine is usually a pop and
 * no mmap.  The pool is released when the thread exits.
 */
#include "qemu/osdep.h"
#include "util/coroutine-int.h"
#include "qemu/trace.h"

#include <pthread.h>

typedef struct CoroutinePool {
    Coroutine *head;
    unsigned size;
    bool registered;
} CoroutinePool;

static __thread CoroutinePool pool;
static pthread_key_t pool_key;
static pthread_once_t pool_key_once = PTHREAD_ONCE_INIT;

static void coroutine_pool_free_thread(void *unused)
{
    Coroutine *co;

    while ((co = pool.head)) {
        pool.head = co->pool_next;
        qemu_coroutine_delete(co);
    }
    pool.size = 0;
}

static void coroutine_pool_key_init(void)
{
    pthread_key_create(&pool_key, coroutine_pool_free_thread);
}

static void coroutine_pool_register(void)
{
    /* The destructor runs only for a non-NULL value: use any marker. */
    pthread_once(&pool_key_once, coroutine_pool_key_init);
    pthread_setspecific(pool_key, &pool);
    pool.registered = true;
}

Coroutine *qemu_coroutine_create(CoroutineEntry *entry, void *opaque)
{
    Coroutine *co = pool.head;

    if (co) {
        pool.head = co->pool_next;
        pool.size--;
        co->pool_next = NULL;
    } else {
        co = qemu_coroutine_new();
    }
    co->entry = entry;
    co->entry_arg = opaque;
    co->ctx = NULL;
    co->caller = NULL;
    co->scheduled = NULL;
    co->wakeup_queued = false;
    co->co_queue_next = NULL;
    co->wakeup_head = co->wakeup_tail = NULL;
    co->co_scheduled_next = NULL;
    return co;
}

static void coroutine_release(Coroutine *co)
{
    co->caller = NULL;
    co->entry = NULL;
    co->entry_arg = NULL;
    if (pool.size < COROUTINE_POOL_MAX) {
        if (unlikely(!pool.registered)) {
            coroutine_pool_register();
        }
        co->pool_next = pool.head;
        pool.head = co;
        pool.size++;
        return;
    }
    qemu_coroutine_delete(co);
}

unsigned qemu_coroutine_pool_size(void)
{
    return pool.size;
}

void qemu_aio_coroutine_enter(AioContext *ctx, Coroutine *co)
{
    Coroutine *self = qemu_coroutine_self();
    Coroutine *pending = co;

    assert(!co->co_queue_next);
    while (pending) {
        Coroutine *to = pending;
        CoroutineAction ret;

        pending = to->co_queue_next;
        to->co_queue_next = NULL;
        to->wakeup_queued = false;

        if (to->scheduled) {
            fprintf(stderr, "%s: Co-routine was already scheduled in '%s'\n",
                    __func__, to->scheduled);
            abort();
        }
        if (to->caller || to == self) {
            fprintf(stderr, "%s: Co-routine re-entered recursively\n",
                    __func__);
            abort();
        }

        to->caller = self;
        to->ctx = ctx;
        trace(qemu_coroutine_enter, "from %p to %p opaque %p",
              self, to, to->entry_arg);
        ret = qemu_coroutine_switch(self, to, COROUTINE_ENTER);

        /* Run what to woke meanwhile before anything else still pending. */
        if (to->wakeup_head) {
            to->wakeup_tail->co_queue_next = pending;
            pending = to->wakeup_head;
            to->wakeup_head = to->wakeup_tail = NULL;
        }

        switch (ret) {
        case COROUTINE_YIELD:
            break;
        case COROUTINE_TERMINATE:
            trace(qemu_coroutine_terminate, "co %p", to);
            coroutine_release(to);
            break;
        default:
            abort();
        }
    }
}

void qemu_coroutine_enter(Coroutine *co)
{
    qemu_aio_coroutine_enter(qemu_get_current_aio_context(), co);
}

void qemu_coroutine_enter_if_inactive(Coroutine *co)
{
    if (!qemu_coroutine_entered(co) && !co->wakeup_queued && !co->scheduled) {
        qemu_coroutine_enter(co);
    }
}

void coroutine_fn qemu_coroutine_yield(void)
{
    Coroutine *self = qemu_coroutine_self();
    Coroutine *to = self->caller;

    if (!to) {
        fprintf(stderr, "%s: Co-routine is yielding to no one\n", __func__);
        abort();
    }
    trace(qemu_coroutine_yield, "from %p to %p", self, to);
    self->caller = NULL;
    qemu_coroutine_switch(self, to, COROUTINE_YIELD);
}

bool qemu_coroutine_entered(Coroutine *co)
{
    return co->caller != NULL;
}

AioContext *qemu_coroutine_get_aio_context(Coroutine *co)
{
    return co->ctx;
}

void qemu_coroutine_queue_wakeup(Coroutine *co)
{
    Coroutine *self = qemu_coroutine_self();

    assert(qemu_in_coroutine());
    if (co == self) {
        fprintf(stderr, "%s: Co-routine woke itself\n", __func__);
        abort();
    }
    if (co->wakeup_queued || co->caller) {
        fprintf(stderr, "%s: Co-routine woken while %s\n", __func__,
                co->caller ? "running" : "already queued for wakeup");
        abort();
    }
    co->wakeup_queued = true;
    co->co_queue_next = NULL;
    if (self->wakeup_tail) {
        self->wakeup_tail->co_queue_next = co;
    } else {
        self->wakeup_head = co;
    }
    self->wakeup_tail = co;
}

void coroutine_fn qemu_co_yield_to_loop(void)
{
    Coroutine *self = qemu_coroutine_self();

    aio_co_schedule(self->ctx, self);
    qemu_coroutine_yield();
}

typedef struct CoRunSync {
    CoroutineEntry *fn;
    void *opaque;
    bool done;
} CoRunSync;

static void coroutine_fn co_run_sync_entry(void *opaque)
{
    CoRunSync *s = opaque;

    s->fn(s->opaque);
    s->done = true;
    aio_notify(qemu_get_current_aio_context());
}

void qemu_co_run_sync(CoroutineEntry *fn, void *opaque)
{
    AioContext *ctx;
    CoRunSync s = { .fn = fn, .opaque = opaque };

    if (qemu_in_coroutine()) {
        fn(opaque);
        return;
    }
    ctx = qemu_get_current_aio_context();
    qemu_aio_coroutine_enter(ctx, qemu_coroutine_create(co_run_sync_entry,
                                                        &s));
    AIO_WAIT_WHILE(ctx, !s.done);
}
