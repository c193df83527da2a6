/*
 * Block export registry and the block-export-* QMP commands.
 * Lifecycle: see include/block/export.h.
 */
#include "qemu/osdep.h"
#include "block/export.h"
#include "block/nbd.h"
#include "qemu/trace.h"
#include "qapi-commands.h"
#include "qapi-events.h"
#include "qapi-visit.h"
#include "qapi/qobject-input-visitor.h"
#include "qemu/keyval.h"

static GList *block_exports;

static const BlockExportDriver *blk_exp_find_driver(BlockExportType type)
{
    static const BlockExportDriver *const drivers[] = { &blk_exp_nbd };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(drivers); i++) {
        if (drivers[i]->type == type) {
            return drivers[i];
        }
    }
    return NULL;
}

BlockExport *blk_exp_find(const char *id)
{
    GList *l;

    for (l = block_exports; l; l = l->next) {
        BlockExport *exp = l->data;
        if (strcmp(exp->id, id) == 0) {
            return exp;
        }
    }
    return NULL;
}

unsigned blk_exp_count(void)
{
    return g_list_length(block_exports);
}

static bool blk_exp_id_valid(const char *id)
{
    const char *p;

    if (!g_ascii_isalpha(id[0])) {
        return false;
    }
    for (p = id; *p; p++) {
        if (!g_ascii_isalnum(*p) && !strchr("-._", *p)) {
            return false;
        }
    }
    return true;
}

BlockExport *blk_exp_add(BlockExportOptions *export, Error **errp)
{
    const BlockExportDriver *drv;
    BlockDriverState *bs;
    BlockExport *exp;
    uint64_t perm;
    bool writable = export->has_writable && export->writable;
    int ret;

    if (!blk_exp_id_valid(export->id)) {
        error_setg(errp, "Invalid block export id");
        return NULL;
    }
    if (blk_exp_find(export->id)) {
        error_setg(errp, "Block export id '%s' is already in use",
                   export->id);
        return NULL;
    }
    drv = blk_exp_find_driver(export->type);
    if (!drv) {
        error_setg(errp, "No driver found for the requested export type");
        return NULL;
    }
    if (export->iothread) {
        error_setg(errp, "blockd runs all exports in the main thread; "
                   "'iothread' is not supported");
        return NULL;
    }
    bs = bdrv_lookup_bs(NULL, export->node_name, errp);
    if (!bs) {
        return NULL;
    }
    if (writable && bdrv_is_read_only(bs)) {
        error_setg(errp, "Cannot export read-only node as writable");
        return NULL;
    }

    perm = BLK_PERM_CONSISTENT_READ;
    if (writable) {
        perm |= BLK_PERM_WRITE;
    }
    exp = g_malloc0(drv->instance_size);
    exp->drv = drv;
    exp->id = g_strdup(export->id);
    exp->refcount = 1;
    exp->user_owned = true;
    exp->ctx = qemu_get_aio_context();
    exp->blk = blk_new(perm, BLK_PERM_ALL);
    if (!blk_insert_bs(exp->blk, bs, errp)) {
        goto fail;
    }
    ret = drv->create(exp, export, errp);
    if (ret < 0) {
        goto fail;
    }
    /* Newest first, as QEMU lists them */
    block_exports = g_list_prepend(block_exports, exp);
    trace(blk_exp_add, "id %s node %s", exp->id, export->node_name);
    return exp;

fail:
    blk_unref(exp->blk);
    g_free(exp->id);
    g_free(exp);
    return NULL;
}

void blk_exp_ref(BlockExport *exp)
{
    assert(exp->refcount > 0);
    exp->refcount++;
}

static void blk_exp_delete_bh(void *opaque)
{
    BlockExport *exp = opaque;
    g_autofree char *id = exp->id;

    assert(exp->refcount == 0);
    block_exports = g_list_remove(block_exports, exp);
    qemu_bh_delete(exp->delete_bh);
    exp->drv->delete(exp);
    blk_unref(exp->blk);
    trace(blk_exp_deleted, "id %s", id);
    qapi_event_send_block_export_deleted(id);
    g_free(exp);
}

void blk_exp_unref(BlockExport *exp)
{
    assert(exp->refcount > 0);
    if (--exp->refcount == 0) {
        /* A client coroutine may be the caller: delete outside it */
        exp->delete_bh = aio_bh_new(exp->ctx, blk_exp_delete_bh, exp);
        qemu_bh_schedule(exp->delete_bh);
    }
}

void blk_exp_request_shutdown(BlockExport *exp)
{
    /* The user's reference keeps exp alive across request_shutdown */
    exp->drv->request_shutdown(exp);
    if (exp->user_owned) {
        exp->user_owned = false;
        blk_exp_unref(exp);
    }
}

static bool blk_exp_has_type(BlockExportType type)
{
    GList *l;

    for (l = block_exports; l; l = l->next) {
        BlockExport *exp = l->data;
        if (exp->drv->type == type) {
            return true;
        }
    }
    return false;
}

void blk_exp_close_all_type(BlockExportType type)
{
    GList *l, *next;

    for (l = block_exports; l; l = next) {
        BlockExport *exp = l->data;
        next = l->next;
        if (exp->drv->type == type) {
            blk_exp_ref(exp);
            blk_exp_request_shutdown(exp);
            blk_exp_unref(exp);
        }
    }
    AIO_WAIT_WHILE(qemu_get_aio_context(), blk_exp_has_type(type));
}

void blk_exp_close_all(void)
{
    blk_exp_close_all_type(BLOCK_EXPORT_TYPE_NBD);
    assert(!block_exports);
}

bool blk_exp_add_cmdline(const char *arg, Error **errp)
{
    bool is_json = false;
    g_autoptr(json_t) opts = keyval_or_json_parse_full(arg, "type", &is_json,
                                                       errp);
    BlockExportOptions *options = NULL;
    Visitor *v;
    bool ok;

    if (!opts) {
        return false;
    }
    v = is_json ? qobject_input_visitor_new(opts)
                : qobject_input_visitor_new_keyval(opts);
    ok = visit_type_BlockExportOptions(v, NULL, &options, errp);
    visit_free(v);
    ok = ok && blk_exp_add(options, errp) != NULL;
    qapi_free_BlockExportOptions(options);
    return ok;
}

/* ---- QMP ---- */

void qmp_block_export_add(BlockExportOptions *export, Error **errp)
{
    blk_exp_add(export, errp);
}

void qmp_block_export_del(const char *id, bool has_mode,
                          BlockExportRemoveMode mode, Error **errp)
{
    BlockExport *exp = blk_exp_find(id);

    if (!has_mode) {
        mode = BLOCK_EXPORT_REMOVE_MODE_SAFE;
    }
    if (!exp) {
        error_setg(errp, "Export '%s' is not found", id);
        return;
    }
    if (!exp->user_owned) {
        error_setg(errp, "Export '%s' is already shutting down", id);
        return;
    }
    if (mode == BLOCK_EXPORT_REMOVE_MODE_SAFE && exp->refcount > 1) {
        error_setg(errp, "export '%s' still in use", exp->id);
        error_append_hint(errp, "Use mode='hard' to force client "
                          "disconnect\n");
        return;
    }
    blk_exp_request_shutdown(exp);
}

BlockExportInfoList *qmp_query_block_exports(Error **errp)
{
    BlockExportInfoList *head = NULL, **tail = &head;
    GList *l;

    for (l = block_exports; l; l = l->next) {
        BlockExport *exp = l->data;
        BlockExportInfo *info = g_new0(BlockExportInfo, 1);
        BlockExportInfoList *e = g_new0(BlockExportInfoList, 1);

        info->id = g_strdup(exp->id);
        info->type = exp->drv->type;
        info->node_name = g_strdup(bdrv_get_node_name(blk_bs(exp->blk)));
        info->shutting_down = !exp->user_owned;
        e->value = info;
        *tail = e;
        tail = &e->next;
    }
    return head;
}
