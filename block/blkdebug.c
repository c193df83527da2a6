/*
 * blkdebug: a fault-injection filter (QEMU's, same options and syntax).
 *
 * Rules hang on blkdebug events (BLKDBG_*; raised by formats on their file
 * child and by the generic request path).  When an event is raised on the
 * blkdebug node, every rule for that event whose state matches (state 0 =
 * any) is processed:
 * - inject-error: the rule becomes "active" (the first inject-error rule of
 *   an event replaces the previous active set).  Every later request of a
 *   matching I/O type that covers the rule's offset (or any request when
 *   no offset/sector is given) fails with -errno; with once=on the rule is
 *   deleted after firing; without immediately=on the failing request first
 *   yields once to the event loop (like a real completion).
 * - set-state: the state machine moves to new_state once all rules of the
 *   event have run (so rules of one event all see the old state).
 * - break points (bdrv_debug_breakpoint): the coroutine raising the event
 *   is suspended ("blkdebug: Suspended request 'TAG'") until resumed.
 *
 * Options: image (child), config (QEMU config file with [inject-error] and
 * [set-state] sections), inject-error / set-state lists, align,
 * max-transfer, opt-write-zero, max-write-zero, opt-discard, max-discard,
 * take-child-perms, unshare-child-perms.  Filename form:
 * "blkdebug:[CONFIG]:IMAGE".
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "qemu/cutils.h"
#include "qemu/trace.h"

#include "qapi/util.h"

/* Event and I/O type names come from the QAPI schema (BlkdebugEvent,
 * BlkdebugIOType in qapi/block-core.json). */
const char *blkdebug_event_name(BlkdebugEvent ev)
{
    assert(ev < BLKDBG__MAX);
    return BlkdebugEvent_str(ev);
}

int blkdebug_event_lookup(const char *name)
{
    return qapi_enum_parse(&BlkdebugEvent_lookup, name, -1, NULL);
}

typedef enum {
    ACTION_INJECT_ERROR,
    ACTION_SET_STATE,
    ACTION_SUSPEND,
} BlkdebugAction;

typedef struct BlkdebugRule {
    BlkdebugEvent event;
    BlkdebugAction action;
    int state;
    /* inject-error */
    int error;
    bool once, immediately;
    int64_t offset;             /* -1: any */
    uint64_t iotype_mask;
    /* set-state */
    int new_state;
    /* suspend */
    char *tag;
    bool active;
} BlkdebugRule;

typedef struct BlkdebugSuspendedReq {
    Coroutine *co;
    char *tag;
} BlkdebugSuspendedReq;

typedef struct BDRVBlkdebugState {
    int state;
    int new_state;
    GList *rules[BLKDBG__MAX];      /* of BlkdebugRule * */
    GList *active_rules;            /* of BlkdebugRule * */
    GList *suspended_reqs;          /* of BlkdebugSuspendedReq * */
    uint64_t align, max_transfer;
    uint64_t opt_write_zero, max_write_zero, opt_discard, max_discard;
    uint64_t take_child_perms, unshare_child_perms;
} BDRVBlkdebugState;

/* ---- rules ---- */

static void remove_rule(BDRVBlkdebugState *s, BlkdebugRule *rule)
{
    s->rules[rule->event] = g_list_remove(s->rules[rule->event], rule);
    s->active_rules = g_list_remove(s->active_rules, rule);
    g_free(rule->tag);
    g_free(rule);
}

static bool parse_iotypes(json_t *v, uint64_t *mask, Error **errp)
{
    size_t i;
    json_t *e;

    *mask = 0;
    if (json_is_string(v)) {
        /* config file / keyval shorthand: one type */
        g_autoptr(json_t) arr = json_array();

        json_array_append(arr, v);
        return parse_iotypes(arr, mask, errp);
    }
    if (!json_is_array(v)) {
        error_setg(errp, "Invalid parameter type for 'iotype', expected: "
                   "array");
        return false;
    }
    json_array_foreach(v, i, e) {
        int j;

        j = json_is_string(e) ?
            qapi_enum_parse(&BlkdebugIOType_lookup, json_string_value(e),
                            -1, NULL) : -1;
        if (j < 0) {
            error_setg(errp, "Parameter 'iotype' does not accept value '%s'",
                       json_is_string(e) ? json_string_value(e) : "?");
            return false;
        }
        *mask |= 1ULL << j;
    }
    return true;
}

static bool add_rule(BDRVBlkdebugState *s, json_t *o, BlkdebugAction action,
                     Error **errp)
{
    g_autofree char *event = NULL;
    g_autoptr(json_t) iotype = NULL;
    int64_t state = 0, err = EIO, sector = -1, offset = -1, new_state = 0;
    bool has_new_state = false;
    BlkdebugRule *rule;
    int ev;

    if (!json_is_object(o)) {
        error_setg(errp, "Invalid parameter type for '%s', expected: object",
                   action == ACTION_INJECT_ERROR ? "inject-error"
                                                 : "set-state");
        return false;
    }
    if (!bdrv_opt_get_str(o, "event", &event, NULL, errp) ||
        !bdrv_opt_get_int(o, "state", &state, NULL, errp)) {
        return false;
    }
    if (!event) {
        error_setg(errp, "Missing event name for rule");
        return false;
    }
    ev = blkdebug_event_lookup(event);
    if (ev < 0) {
        error_setg(errp, "Invalid event name \"%s\"", event);
        return false;
    }
    rule = g_new0(BlkdebugRule, 1);
    rule->event = ev;
    rule->action = action;
    rule->state = state;
    rule->offset = -1;
    if (action == ACTION_INJECT_ERROR) {
        if (!bdrv_opt_get_int(o, "errno", &err, NULL, errp) ||
            !bdrv_opt_get_int(o, "sector", &sector, NULL, errp) ||
            !bdrv_opt_get_int(o, "offset", &offset, NULL, errp) ||
            !bdrv_opt_get_bool(o, "once", &rule->once, NULL, errp) ||
            !bdrv_opt_get_bool(o, "immediately", &rule->immediately, NULL,
                               errp)) {
            g_free(rule);
            return false;
        }
        rule->error = err;
        rule->offset = sector >= 0 ? sector * BDRV_SECTOR_SIZE : offset;
        iotype = bdrv_opt_take(o, "iotype");
        if (iotype) {
            if (!parse_iotypes(iotype, &rule->iotype_mask, errp)) {
                g_free(rule);
                return false;
            }
        } else {
            /* QEMU's default: every type but block-status */
            rule->iotype_mask = (1ULL << BLKDEBUG_IO_TYPE_BLOCK_STATUS) - 1;
        }
    } else {
        if (!bdrv_opt_get_int(o, "new_state", &new_state, &has_new_state,
                              errp)) {
            g_free(rule);
            return false;
        }
        if (!has_new_state) {
            error_setg(errp, "Parameter 'new_state' is missing");
            g_free(rule);
            return false;
        }
        rule->new_state = new_state;
    }
    if (json_object_size(o)) {
        const char *k = json_object_iter_key(json_object_iter(o));

        error_setg(errp, "Invalid parameter '%s'", k);
        g_free(rule);
        return false;
    }
    s->rules[ev] = g_list_append(s->rules[ev], rule);
    return true;
}

static bool add_rule_list(BDRVBlkdebugState *s, json_t *list,
                          BlkdebugAction action, Error **errp)
{
    size_t i;
    json_t *e;

    if (json_is_object(list)) {
        /* keyval with a single element may come as an object */
        return add_rule(s, list, action, errp);
    }
    if (!json_is_array(list)) {
        error_setg(errp, "Invalid parameter type for '%s', expected: array",
                   action == ACTION_INJECT_ERROR ? "inject-error"
                                                 : "set-state");
        return false;
    }
    json_array_foreach(list, i, e) {
        g_autoptr(json_t) copy = json_deep_copy(e);

        if (!add_rule(s, copy, action, errp)) {
            return false;
        }
    }
    return true;
}

/*
 * QEMU config file: "[section]" headers, "key = "value"" lines, '#'
 * comments.  Sections inject-error and set-state become rules.
 */
static bool read_config(BDRVBlkdebugState *s, const char *path, Error **errp)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) gerr = NULL;
    g_auto(GStrv) lines = NULL;
    g_autoptr(json_t) cur = NULL;
    BlkdebugAction cur_action = ACTION_INJECT_ERROR;
    int i;

    if (!g_file_get_contents(path, &text, NULL, &gerr)) {
        error_setg(errp, "Could not read blkdebug config file: %s",
                   gerr->message);
        return false;
    }
    lines = g_strsplit(text, "\n", -1);
    for (i = 0; lines[i]; i++) {
        g_autofree char *line = g_strstrip(g_strdup(lines[i]));
        char *eq;

        if (!line[0] || line[0] == '#') {
            continue;
        }
        if (line[0] == '[') {
            char *end = strchr(line, ']');

            if (cur && !add_rule(s, cur, cur_action, errp)) {
                return false;
            }
            json_decref(cur);
            cur = NULL;
            if (!end) {
                error_setg(errp, "%s:%d: parse error", path, i + 1);
                return false;
            }
            *end = '\0';
            if (!strcmp(line + 1, "inject-error")) {
                cur_action = ACTION_INJECT_ERROR;
            } else if (!strcmp(line + 1, "set-state")) {
                cur_action = ACTION_SET_STATE;
            } else {
                error_setg(errp, "%s:%d: There is no option group '%s'",
                           path, i + 1, line + 1);
                return false;
            }
            cur = json_object();
            continue;
        }
        eq = strchr(line, '=');
        if (!cur || !eq) {
            error_setg(errp, "%s:%d: parse error", path, i + 1);
            return false;
        }
        *eq = '\0';
        {
            g_autofree char *key = g_strstrip(g_strdup(line));
            g_autofree char *val = g_strstrip(g_strdup(eq + 1));
            size_t n = strlen(val);

            if (n >= 2 && val[0] == '"' && val[n - 1] == '"') {
                val[n - 1] = '\0';
                memmove(val, val + 1, n - 1);
            }
            json_object_set_new(cur, key, json_string(val));
        }
    }
    if (cur && !add_rule(s, cur, cur_action, errp)) {
        return false;
    }
    return true;
}

/* ---- open/close ---- */

static void blkdebug_parse_filename(const char *filename, json_t *options,
                                    Error **errp)
{
    const char *c;

    /* blkdebug:[CONFIG]:IMAGE */
    if (!g_str_has_prefix(filename, "blkdebug:")) {
        error_setg(errp, "File name string must start with 'blkdebug:'");
        return;
    }
    filename += strlen("blkdebug:");
    c = strchr(filename, ':');
    if (!c) {
        error_setg(errp, "Illegal syntax: Must start with 'blkdebug:'");
        return;
    }
    if (c != filename) {
        json_object_set_new(options, "config",
                            json_stringn(filename, c - filename));
    }
    json_object_set_new(options, "image", json_string(c + 1));
}

static const char *const perm_names[] = {
    "consistent-read", "write", "write-unchanged", "resize", NULL,
};

static bool get_perm_list(json_t *opts, const char *key, uint64_t *mask,
                          Error **errp)
{
    g_autoptr(json_t) v = bdrv_opt_take(opts, key);
    size_t i;
    json_t *e;

    *mask = 0;
    if (!v) {
        return true;
    }
    if (!json_is_array(v)) {
        error_setg(errp, "Invalid parameter type for '%s', expected: array",
                   key);
        return false;
    }
    json_array_foreach(v, i, e) {
        int j;

        for (j = 0; perm_names[j]; j++) {
            if (json_is_string(e) &&
                !strcmp(json_string_value(e), perm_names[j])) {
                break;
            }
        }
        if (!perm_names[j]) {
            error_setg(errp, "Parameter '%s' does not accept value '%s'", key,
                       json_is_string(e) ? json_string_value(e) : "?");
            return false;
        }
        *mask |= 1ULL << j;
    }
    return true;
}

static void blkdebug_free_rules(BDRVBlkdebugState *s)
{
    int i;

    for (i = 0; i < BLKDBG__MAX; i++) {
        while (s->rules[i]) {
            remove_rule(s, s->rules[i]->data);
        }
    }
}

static int blkdebug_open(BlockDriverState *bs, json_t *options, int flags,
                         Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;
    g_autofree char *config = NULL;
    g_autoptr(json_t) inject = NULL;
    g_autoptr(json_t) setst = NULL;

    s->state = 1;
    if (!bdrv_opt_get_str(options, "config", &config, NULL, errp) ||
        !bdrv_opt_get_size(options, "align", &s->align, NULL, errp) ||
        !bdrv_opt_get_size(options, "max-transfer", &s->max_transfer, NULL,
                           errp) ||
        !bdrv_opt_get_size(options, "opt-write-zero", &s->opt_write_zero,
                           NULL, errp) ||
        !bdrv_opt_get_size(options, "max-write-zero", &s->max_write_zero,
                           NULL, errp) ||
        !bdrv_opt_get_size(options, "opt-discard", &s->opt_discard, NULL,
                           errp) ||
        !bdrv_opt_get_size(options, "max-discard", &s->max_discard, NULL,
                           errp) ||
        !get_perm_list(options, "take-child-perms", &s->take_child_perms,
                       errp) ||
        !get_perm_list(options, "unshare-child-perms",
                       &s->unshare_child_perms, errp)) {
        goto fail;
    }
    if (config && !read_config(s, config, errp)) {
        goto fail;
    }
    inject = bdrv_opt_take(options, "inject-error");
    setst = bdrv_opt_take(options, "set-state");
    if ((inject && !add_rule_list(s, inject, ACTION_INJECT_ERROR, errp)) ||
        (setst && !add_rule_list(s, setst, ACTION_SET_STATE, errp))) {
        goto fail;
    }
    if (s->align && (s->align >= INT_MAX || !is_power_of_2(s->align))) {
        error_setg(errp, "Cannot meet constraints with align %" PRIu64,
                   s->align);
        goto fail;
    }
    if (s->max_transfer &&
        (s->max_transfer >= INT_MAX ||
         !QEMU_IS_ALIGNED(s->max_transfer, MAX(s->align, 1)))) {
        error_setg(errp, "Cannot meet constraints with max-transfer %" PRIu64,
                   s->max_transfer);
        goto fail;
    }
    if (!bdrv_open_child(bs, options, "image",
                         BDRV_CHILD_FILTERED | BDRV_CHILD_PRIMARY, false,
                         errp)) {
        goto fail;
    }
    bs->supported_write_flags = BDRV_REQ_WRITE_UNCHANGED |
        (bs->file->bs->supported_write_flags & BDRV_REQ_FUA);
    bs->supported_zero_flags = BDRV_REQ_WRITE_UNCHANGED |
        (bs->file->bs->supported_zero_flags &
         (BDRV_REQ_FUA | BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK));
    return 0;

fail:
    blkdebug_free_rules(s);
    return -EINVAL;
}

static void blkdebug_close(BlockDriverState *bs)
{
    BDRVBlkdebugState *s = bs->opaque;

    blkdebug_free_rules(s);
}

static void blkdebug_refresh_limits(BlockDriverState *bs, Error **errp)
{
    BDRVBlkdebugState *s = bs->opaque;

    if (s->align) {
        bs->bl.request_alignment = s->align;
    }
    if (s->max_transfer) {
        bs->bl.max_transfer = s->max_transfer;
    }
    if (s->opt_write_zero) {
        bs->bl.pwrite_zeroes_alignment = s->opt_write_zero;
    }
    if (s->max_write_zero) {
        bs->bl.max_pwrite_zeroes = s->max_write_zero;
    }
    if (s->opt_discard) {
        bs->bl.pdiscard_alignment = s->opt_discard;
    }
    if (s->max_discard) {
        bs->bl.max_pdiscard = s->max_discard;
    }
}

static void blkdebug_child_perm(BlockDriverState *bs, BdrvChild *c,
                                unsigned role, uint64_t perm,
                                uint64_t shared, uint64_t *nperm,
                                uint64_t *nshared)
{
    BDRVBlkdebugState *s = bs->opaque;

    bdrv_default_perms(bs, c, role, perm, shared, nperm, nshared);
    *nperm |= s->take_child_perms;
    *nshared &= ~s->unshare_child_perms;
}

/* ---- I/O ---- */

static int coroutine_fn rule_check(BlockDriverState *bs, int64_t offset,
                                   int64_t bytes, BlkdebugIOType iotype)
{
    BDRVBlkdebugState *s = bs->opaque;
    BlkdebugRule *rule = NULL;
    GList *l;
    int error;
    bool immediately;

    for (l = s->active_rules; l; l = l->next) {
        BlkdebugRule *r = l->data;

        if (!(r->iotype_mask & (1ULL << iotype))) {
            continue;
        }
        if (r->offset == -1 ||
            (bytes && r->offset >= offset && r->offset < offset + bytes)) {
            rule = r;
            break;
        }
    }
    if (!rule || !rule->error) {
        return 0;
    }
    error = rule->error;
    immediately = rule->immediately;
    trace(blkdebug_inject_error, "bs %s iotype %d offset %" PRId64
          " errno %d once %d", bs->node_name, iotype, offset, error,
          rule->once);
    if (rule->once) {
        remove_rule(s, rule);
    }
    if (!immediately) {
        aio_co_schedule(qemu_get_aio_context(), qemu_coroutine_self());
        qemu_coroutine_yield();
    }
    return -error;
}

static int coroutine_fn blkdebug_co_preadv(BlockDriverState *bs,
                                           int64_t offset, int64_t bytes,
                                           QEMUIOVector *qiov,
                                           BdrvRequestFlags flags)
{
    int err = rule_check(bs, offset, bytes, BLKDEBUG_IO_TYPE_READ);

    if (err) {
        return err;
    }
    return bdrv_co_preadv(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn blkdebug_co_pwritev(BlockDriverState *bs,
                                            int64_t offset, int64_t bytes,
                                            QEMUIOVector *qiov,
                                            BdrvRequestFlags flags)
{
    int err = rule_check(bs, offset, bytes, BLKDEBUG_IO_TYPE_WRITE);

    if (err) {
        return err;
    }
    return bdrv_co_pwritev(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn blkdebug_co_pwrite_zeroes(BlockDriverState *bs,
                                                  int64_t offset,
                                                  int64_t bytes,
                                                  BdrvRequestFlags flags)
{
    int err = rule_check(bs, offset, bytes, BLKDEBUG_IO_TYPE_WRITE_ZEROES);

    if (err) {
        return err;
    }
    return bdrv_co_pwrite_zeroes(bs->file, offset, bytes, flags);
}

static int coroutine_fn blkdebug_co_pdiscard(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes)
{
    int err = rule_check(bs, offset, bytes, BLKDEBUG_IO_TYPE_DISCARD);

    if (err) {
        return err;
    }
    return bdrv_co_pdiscard(bs->file, offset, bytes);
}

static int coroutine_fn blkdebug_co_flush(BlockDriverState *bs)
{
    return rule_check(bs, 0, 0, BLKDEBUG_IO_TYPE_FLUSH);
}

static int coroutine_fn blkdebug_co_block_status(BlockDriverState *bs,
                                                 bool want_zero,
                                                 int64_t offset,
                                                 int64_t bytes, int64_t *pnum,
                                                 int64_t *map,
                                                 BlockDriverState **file)
{
    int err = rule_check(bs, offset, bytes, BLKDEBUG_IO_TYPE_BLOCK_STATUS);

    if (err) {
        return err;
    }
    *pnum = bytes;
    *map = offset;
    *file = bs->file->bs;
    return BDRV_BLOCK_RAW | BDRV_BLOCK_OFFSET_VALID;
}

static int64_t coroutine_fn blkdebug_co_getlength(BlockDriverState *bs)
{
    return bdrv_getlength(bs->file->bs);
}

static int coroutine_fn blkdebug_co_truncate(BlockDriverState *bs,
                                             int64_t offset, bool exact,
                                             Error **errp)
{
    return bdrv_co_truncate(bs->file, offset, exact, errp);
}

/* ---- events and break points ---- */

static void coroutine_fn suspend_request(BlockDriverState *bs,
                                         BlkdebugRule *rule)
{
    BDRVBlkdebugState *s = bs->opaque;
    BlkdebugSuspendedReq *r = g_new0(BlkdebugSuspendedReq, 1);

    r->co = qemu_coroutine_self();
    r->tag = g_strdup(rule->tag);
    remove_rule(s, rule);
    s->suspended_reqs = g_list_prepend(s->suspended_reqs, r);
    printf("blkdebug: Suspended request '%s'\n", r->tag);
    fflush(stdout);
    qemu_coroutine_yield();
    printf("blkdebug: Resuming request '%s'\n", r->tag);
    fflush(stdout);
    s->suspended_reqs = g_list_remove(s->suspended_reqs, r);
    g_free(r->tag);
    g_free(r);
}

static void blkdebug_debug_event(BlockDriverState *bs, BlkdebugEvent event)
{
    BDRVBlkdebugState *s = bs->opaque;
    GList *l, *next, *suspend = NULL;
    bool injected = false;

    assert(event < BLKDBG__MAX);
    s->new_state = s->state;
    for (l = s->rules[event]; l; l = next) {
        BlkdebugRule *rule = l->data;

        next = l->next;
        if (rule->state && rule->state != s->state) {
            continue;
        }
        switch (rule->action) {
        case ACTION_INJECT_ERROR:
            if (!injected) {
                g_list_free(s->active_rules);
                s->active_rules = NULL;
                injected = true;
            }
            s->active_rules = g_list_prepend(s->active_rules, rule);
            break;
        case ACTION_SET_STATE:
            s->new_state = rule->new_state;
            break;
        case ACTION_SUSPEND:
            suspend = g_list_append(suspend, rule);
            break;
        }
    }
    if (s->new_state != s->state) {
        trace(blkdebug_set_state, "bs %s state %d -> %d", bs->node_name,
              s->state, s->new_state);
    }
    s->state = s->new_state;
    /* suspend last, after the state machine moved */
    for (l = suspend; l; l = l->next) {
        if (qemu_in_coroutine()) {
            suspend_request(bs, l->data);
        }
    }
    g_list_free(suspend);
}

static int blkdebug_debug_breakpoint(BlockDriverState *bs, const char *event,
                                     const char *tag)
{
    BDRVBlkdebugState *s = bs->opaque;
    BlkdebugRule *rule;
    int ev = blkdebug_event_lookup(event);

    if (ev < 0) {
        return -ENOENT;
    }
    rule = g_new0(BlkdebugRule, 1);
    rule->event = ev;
    rule->action = ACTION_SUSPEND;
    rule->tag = g_strdup(tag);
    rule->offset = -1;
    s->rules[ev] = g_list_append(s->rules[ev], rule);
    return 0;
}

static int resume_req_by_tag(BDRVBlkdebugState *s, const char *tag, bool all)
{
    GList *l;
    int n = 0;

retry:
    for (l = s->suspended_reqs; l; l = l->next) {
        BlkdebugSuspendedReq *r = l->data;

        if (!strcmp(r->tag, tag)) {
            n++;
            qemu_coroutine_enter(r->co);
            if (all) {
                /* the list changed under us */
                goto retry;
            }
            return n;
        }
    }
    return n;
}

static int blkdebug_debug_resume(BlockDriverState *bs, const char *tag)
{
    BDRVBlkdebugState *s = bs->opaque;

    return resume_req_by_tag(s, tag, false) ? 0 : -ENOENT;
}

static int blkdebug_debug_remove_breakpoint(BlockDriverState *bs,
                                            const char *tag)
{
    BDRVBlkdebugState *s = bs->opaque;
    int i, found = 0;

    for (i = 0; i < BLKDBG__MAX; i++) {
        GList *l, *next;

        for (l = s->rules[i]; l; l = next) {
            BlkdebugRule *rule = l->data;

            next = l->next;
            if (rule->action == ACTION_SUSPEND && !strcmp(rule->tag, tag)) {
                remove_rule(s, rule);
                found++;
            }
        }
    }
    found += resume_req_by_tag(s, tag, true);
    return found ? 0 : -ENOENT;
}

static bool blkdebug_debug_is_suspended(BlockDriverState *bs, const char *tag)
{
    BDRVBlkdebugState *s = bs->opaque;
    GList *l;

    for (l = s->suspended_reqs; l; l = l->next) {
        BlkdebugSuspendedReq *r = l->data;

        if (!strcmp(r->tag, tag)) {
            return true;
        }
    }
    return false;
}

BlockDriver bdrv_blkdebug = {
    .format_name = "blkdebug",
    .protocol_name = "blkdebug",
    .instance_size = sizeof(BDRVBlkdebugState),
    .is_filter = true,
    .bdrv_parse_filename = blkdebug_parse_filename,
    .bdrv_open = blkdebug_open,
    .bdrv_close = blkdebug_close,
    .bdrv_refresh_limits = blkdebug_refresh_limits,
    .bdrv_child_perm = blkdebug_child_perm,
    .bdrv_co_preadv = blkdebug_co_preadv,
    .bdrv_co_pwritev = blkdebug_co_pwritev,
    .bdrv_co_pwrite_zeroes = blkdebug_co_pwrite_zeroes,
    .bdrv_co_pdiscard = blkdebug_co_pdiscard,
    .bdrv_co_flush_to_disk = blkdebug_co_flush,
    .bdrv_co_block_status = blkdebug_co_block_status,
    .bdrv_co_getlength = blkdebug_co_getlength,
    .bdrv_co_truncate = blkdebug_co_truncate,
    .bdrv_debug_event = blkdebug_debug_event,
    .bdrv_debug_breakpoint = blkdebug_debug_breakpoint,
    .bdrv_debug_remove_breakpoint = blkdebug_debug_remove_breakpoint,
    .bdrv_debug_resume = blkdebug_debug_resume,
    .bdrv_debug_is_suspended = blkdebug_debug_is_suspended,
};
