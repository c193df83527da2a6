/*
 * Notifier lists (QEMU's include/qemu/notify.h shape), header-only.
 *
 * A NotifierWithReturn is embedded in its owner's struct; the list links
 * the embedded nodes (intrusive, no allocation).  Notifiers run in the order
 * they were added; notifier_with_return_list_notify() stops at the first
 * non-zero return and returns it.  A notifier may remove itself from the
 * list while it runs.
 */
#ifndef QEMU_NOTIFY_H
#define QEMU_NOTIFY_H

#include "qemu/osdep.h"

typedef struct Notifier Notifier;
struct Notifier {
    void (*notify)(Notifier *notifier, void *data);
    Notifier *next, **pprev;
};

typedef struct NotifierList {
    Notifier *head;
} NotifierList;

typedef struct NotifierWithReturn NotifierWithReturn;
struct NotifierWithReturn {
    int (*notify)(NotifierWithReturn *notifier, void *data);
    NotifierWithReturn *next, **pprev;
};

typedef struct NotifierWithReturnList {
    NotifierWithReturn *head;
} NotifierWithReturnList;

#define NOTIFIER_LIST_INITIALIZER(head) { NULL }
#define NOTIFIER_WITH_RETURN_LIST_INITIALIZER(head) { NULL }

static inline void notifier_list_init(NotifierList *list)
{
    list->head = NULL;
}

/* Append (QEMU prepends; we keep registration order, which tests rely on) */
static inline void notifier_list_add(NotifierList *list, Notifier *n)
{
    Notifier **pp = &list->head;

    while (*pp) {
        pp = &(*pp)->next;
    }
    n->next = NULL;
    n->pprev = pp;
    *pp = n;
}

static inline void notifier_remove(Notifier *n)
{
    if (n->pprev) {
        *n->pprev = n->next;
        if (n->next) {
            n->next->pprev = n->pprev;
        }
        n->next = NULL;
        n->pprev = NULL;
    }
}

static inline void notifier_list_notify(NotifierList *list, void *data)
{
    Notifier *n = list->head, *next;

    for (; n; n = next) {
        next = n->next;
        n->notify(n, data);
    }
}

static inline bool notifier_list_empty(NotifierList *list)
{
    return list->head == NULL;
}

static inline void notifier_with_return_list_init(NotifierWithReturnList *l)
{
    l->head = NULL;
}

static inline void notifier_with_return_list_add(NotifierWithReturnList *l,
                                                 NotifierWithReturn *n)
{
    NotifierWithReturn **pp = &l->head;

    while (*pp) {
        pp = &(*pp)->next;
    }
    n->next = NULL;
    n->pprev = pp;
    *pp = n;
}

static inline void notifier_with_return_remove(NotifierWithReturn *n)
{
    if (n->pprev) {
        *n->pprev = n->next;
        if (n->next) {
            n->next->pprev = n->pprev;
        }
        n->next = NULL;
        n->pprev = NULL;
    }
}

/* Run every notifier in order; stop at and return the first non-zero. */
static inline int notifier_with_return_list_notify(NotifierWithReturnList *l,
                                                   void *data)
{
    NotifierWithReturn *n = l->head, *next;
    int ret = 0;

    for (; n; n = next) {
        next = n->next;
        ret = n->notify(n, data);
        if (ret != 0) {
            break;
        }
    }
    return ret;
}

#endif /* QEMU_NOTIFY_H */
