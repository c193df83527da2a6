/*
 * Coroutine locks: CoMutex, CoQueue, CoRwlock.
 *
 * All of them serve coroutines of one thread, so plain fields suffice.
 * Waiters queue a GList link that lives on their own stack (valid for as
 * long as they wait, no allocation) and are woken with aio_co_wake():
 * from coroutine context that defers the wake-up to the waker's next
 * yield (see qemu/coroutine.h), so lock hand-offs never nest.
 *
 * CoMutex hands ownership directly to the first waiter on unlock (the
 * mutex stays locked meanwhile), so nobody can barge in ahead of a woken
 * waiter: strict FIFO.
 *
 * CoRwlock keeps one FIFO of tickets for readers and writers.  A newcomer
 * waits whenever somebody is queued, so a stream of readers cannot starve
 * a queued writer.  When the lock is released, tickets are granted from
 * the head: consecutive readers together, or one writer.
 */
#include "qemu/osdep.h"
#include "qemu/coroutine.h"

/* ---- CoMutex ---- */

void qemu_co_mutex_init(CoMutex *mutex)
{
    memset(mutex, 0, sizeof(*mutex));
    g_queue_init(&mutex->waiters);
}

void coroutine_fn qemu_co_mutex_lock(CoMutex *mutex)
{
    Coroutine *self = qemu_coroutine_self();
    GList link = { .data = self };

    assert(qemu_in_coroutine());
    if (!mutex->locked) {
        mutex->locked = true;
        mutex->holder = self;
        return;
    }
    assert(mutex->holder != self);
    g_queue_push_tail_link(&mutex->waiters, &link);
    qemu_coroutine_yield();
    /* The unlocker made us the holder. */
    assert(mutex->locked && mutex->holder == self);
}

void coroutine_fn qemu_co_mutex_unlock(CoMutex *mutex)
{
    GList *link;
    Coroutine *next;

    assert(mutex->locked);
    assert(mutex->holder == qemu_coroutine_self());
    link = g_queue_pop_head_link(&mutex->waiters);
    if (!link) {
        mutex->locked = false;
        mutex->holder = NULL;
        return;
    }
    next = link->data;
    mutex->holder = next;
    aio_co_wake(next);
}

void qemu_co_mutex_assert_locked(CoMutex *mutex)
{
    assert(mutex->locked && mutex->holder == qemu_coroutine_self());
}

/* ---- CoQueue ---- */

void qemu_co_queue_init(CoQueue *queue)
{
    g_queue_init(&queue->entries);
}

void coroutine_fn qemu_co_queue_wait(CoQueue *queue, CoMutex *lock)
{
    GList link = { .data = qemu_coroutine_self() };

    assert(qemu_in_coroutine());
    g_queue_push_tail_link(&queue->entries, &link);
    if (lock) {
        qemu_co_mutex_unlock(lock);
    }
    qemu_coroutine_yield();
    if (lock) {
        qemu_co_mutex_lock(lock);
    }
}

bool qemu_co_queue_next(CoQueue *queue)
{
    GList *link = g_queue_pop_head_link(&queue->entries);

    if (!link) {
        return false;
    }
    aio_co_wake(link->data);
    return true;
}

void qemu_co_queue_restart_all(CoQueue *queue)
{
    GQueue woken = queue->entries;
    GList *link;

    /* Detach the current waiters first: whoever waits again stays. */
    g_queue_init(&queue->entries);
    while ((link = g_queue_pop_head_link(&woken))) {
        aio_co_wake(link->data);
    }
}

bool qemu_co_enter_next(CoQueue *queue)
{
    return qemu_co_queue_next(queue);
}

bool qemu_co_queue_empty(CoQueue *queue)
{
    return g_queue_is_empty(&queue->entries);
}

/* ---- CoRwlock ---- */

typedef struct CoRwTicket {
    bool read;
    Coroutine *co;
    GList link;
} CoRwTicket;

void qemu_co_rwlock_init(CoRwlock *lock)
{
    memset(lock, 0, sizeof(*lock));
    g_queue_init(&lock->tickets);
}

/* Grant the lock to the tickets at the head of the line that fit. */
static void rwlock_wake_waiters(CoRwlock *lock)
{
    GList *link;

    while ((link = g_queue_peek_head_link(&lock->tickets))) {
        CoRwTicket *t = link->data;

        if (t->read) {
            if (lock->owners < 0) {
                return;
            }
            lock->owners++;
        } else {
            if (lock->owners != 0) {
                return;
            }
            lock->owners = -1;
        }
        g_queue_pop_head_link(&lock->tickets);
        aio_co_wake(t->co);
    }
}

static void coroutine_fn rwlock_wait(CoRwlock *lock, bool read)
{
    CoRwTicket t = { .read = read, .co = qemu_coroutine_self() };

    t.link.data = &t;
    g_queue_push_tail_link(&lock->tickets, &t.link);
    qemu_coroutine_yield();
    /* rwlock_wake_waiters() accounted for us before waking us. */
    assert(read ? lock->owners > 0 : lock->owners == -1);
}

void coroutine_fn qemu_co_rwlock_rdlock(CoRwlock *lock)
{
    assert(qemu_in_coroutine());
    if (lock->owners >= 0 && g_queue_is_empty(&lock->tickets)) {
        lock->owners++;
        return;
    }
    rwlock_wait(lock, true);
}

void coroutine_fn qemu_co_rwlock_wrlock(CoRwlock *lock)
{
    assert(qemu_in_coroutine());
    if (lock->owners == 0 && g_queue_is_empty(&lock->tickets)) {
        lock->owners = -1;
        return;
    }
    rwlock_wait(lock, false);
}

void coroutine_fn qemu_co_rwlock_upgrade(CoRwlock *lock)
{
    assert(lock->owners > 0);
    if (lock->owners == 1 && g_queue_is_empty(&lock->tickets)) {
        lock->owners = -1;
        return;
    }
    /* Give up the read lock and line up as a writer. */
    lock->owners--;
    rwlock_wake_waiters(lock);
    rwlock_wait(lock, false);
}

void coroutine_fn qemu_co_rwlock_downgrade(CoRwlock *lock)
{
    assert(lock->owners == -1);
    lock->owners = 1;
    rwlock_wake_waiters(lock);
}

void coroutine_fn qemu_co_rwlock_unlock(CoRwlock *lock)
{
    assert(lock->owners != 0);
    if (lock->owners > 0) {
        lock->owners--;
    } else {
        lock->owners = 0;
    }
    rwlock_wake_waiters(lock);
}
