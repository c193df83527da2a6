/*
 * NBD server: meta contexts and NBD_CMD_BLOCK_STATUS.
 *
 * Contexts an export offers:
 *   base:allocation          always; HOLE = no data allocated (reads may
 *                            still return data from below), ZERO = reads
 *                            return zeroes (from the whole backing chain)
 *   qemu:allocation-depth    with allocation-depth=on; the value is the
 *                            chain depth that allocates the range: 0 none,
 *                            1 the exported node, 2 its backing file...
 *   qemu:dirty-bitmap:NAME   one per exported bitmap; DIRTY bit.  The
 *                            lookup and the bit state come from the dirty
 *                            bitmap code through NBDDirtyBitmapOps.
 *
 * LIST_META_CONTEXT understands the namespace queries "base:", "qemu:"
 * and "qemu:dirty-bitmap:" (and no query at all: everything); SET only
 * selects exact names.  A selection belongs to the export named in the
 * SET; GO to another export drops it.
 *
 * A BLOCK_STATUS reply has one chunk per selected context, each with at
 * least one extent and covering no more than the request (REQ_ONE: just
 * one extent).  Adjacent extents with the same flags are merged.
 */
#include "qemu/osdep.h"
#include "nbd/nbd-internal.h"
#include "qemu/trace.h"

/* Most extents in one reply chunk (the client asked for fewer bytes) */
#define NBD_MAX_EXTENTS (16 * 1024)

static const NBDDirtyBitmapOps *bitmap_ops;

void nbd_set_dirty_bitmap_ops(const NBDDirtyBitmapOps *ops)
{
    bitmap_ops = ops;
}

/* ---- export setup ---- */

bool nbd_export_bitmaps_setup(NBDExport *exp, BlockDriverState *bs,
                              BlockDirtyBitmapOrStrList *bitmaps,
                              Error **errp)
{
    BlockDirtyBitmapOrStrList *l;
    size_t n = 0;

    for (l = bitmaps; l; l = l->next) {
        n++;
    }
    if (!n) {
        return true;
    }
    exp->bitmaps = g_new0(NBDExportBitmap, n);
    for (l = bitmaps; l; l = l->next) {
        BlockDirtyBitmapOrStr *b = l->value;
        const char *node = NULL;
        const char *name;
        g_autofree char *export_name = NULL;
        void *handle;
        size_t i;

        if (b->type == QTYPE_QSTRING) {
            name = b->u.local;
        } else {
            node = b->u.external.node;
            name = b->u.external.name;
        }
        if (!bitmap_ops) {
            error_setg(errp, "Bitmap '%s' is not found", name);
            error_append_hint(errp, "This build cannot export dirty "
                              "bitmaps yet\n");
            return false;
        }
        handle = bitmap_ops->acquire(bs, node, name, &export_name, errp);
        if (!handle) {
            return false;
        }
        exp->bitmaps[exp->nr_bitmaps].handle = handle;
        exp->bitmaps[exp->nr_bitmaps].context =
            g_strdup_printf(NBD_META_DIRTY_BITMAP "%s",
                            export_name ? export_name : name);
        exp->nr_bitmaps++;
        for (i = 0; i + 1 < exp->nr_bitmaps; i++) {
            if (strcmp(exp->bitmaps[i].context,
                       exp->bitmaps[exp->nr_bitmaps - 1].context) == 0) {
                error_setg(errp, "Bitmap '%s' is exported more than once",
                           name);
                return false;
            }
        }
    }
    return true;
}

void nbd_export_bitmaps_release(NBDExport *exp)
{
    size_t i;

    for (i = 0; i < exp->nr_bitmaps; i++) {
        bitmap_ops->release(exp->bitmaps[i].handle);
        g_free(exp->bitmaps[i].context);
    }
    g_free(exp->bitmaps);
    exp->bitmaps = NULL;
    exp->nr_bitmaps = 0;
}

/* ---- negotiation ---- */

void nbd_meta_contexts_clear(NBDMetaContexts *ctxs)
{
    g_free(ctxs->bitmaps);
    memset(ctxs, 0, sizeof(*ctxs));
}

/* Mark the contexts @query names; @list allows namespace queries */
static void nbd_meta_match(NBDExport *exp, NBDMetaContexts *sel,
                           const char *query, bool list)
{
    size_t i;

    if (strcmp(query, NBD_META_BASE_ALLOCATION) == 0 ||
        (list && strcmp(query, "base:") == 0)) {
        sel->base_allocation = true;
        return;
    }
    if (!g_str_has_prefix(query, "qemu:")) {
        return;
    }
    if (exp->allocation_depth &&
        (strcmp(query, NBD_META_ALLOCATION_DEPTH) == 0 ||
         (list && strcmp(query, "qemu:") == 0))) {
        sel->allocation_depth = true;
    }
    for (i = 0; i < exp->nr_bitmaps; i++) {
        if (strcmp(query, exp->bitmaps[i].context) == 0 ||
            (list && (strcmp(query, "qemu:") == 0 ||
                      strcmp(query, NBD_META_DIRTY_BITMAP) == 0))) {
            sel->bitmaps[i] = true;
        }
    }
}

static int coroutine_fn nbd_send_meta_context(NBDClient *client, uint32_t id,
                                              const char *name, Error **errp)
{
    size_t len = strlen(name);
    g_autofree uint8_t *buf = g_malloc(4 + len);

    stl_be(buf, id);
    memcpy(buf + 4, name, len);
    return nbd_send_rep(client, NBD_REP_META_CONTEXT, buf, 4 + len, errp);
}

static int coroutine_fn nbd_send_meta_selection(NBDClient *client,
                                                NBDExport *exp,
                                                NBDMetaContexts *sel,
                                                Error **errp)
{
    size_t i;

    if (sel->base_allocation &&
        nbd_send_meta_context(client, NBD_META_ID_BASE_ALLOCATION,
                              NBD_META_BASE_ALLOCATION, errp) < 0) {
        return -1;
    }
    if (sel->allocation_depth &&
        nbd_send_meta_context(client, NBD_META_ID_ALLOCATION_DEPTH,
                              NBD_META_ALLOCATION_DEPTH, errp) < 0) {
        return -1;
    }
    for (i = 0; i < exp->nr_bitmaps; i++) {
        if (sel->bitmaps[i] &&
            nbd_send_meta_context(client, NBD_META_ID_DIRTY_BITMAP + i,
                                  exp->bitmaps[i].context, errp) < 0) {
            return -1;
        }
    }
    return 0;
}

int coroutine_fn nbd_negotiate_meta_queries(NBDClient *client,
                                            Error **errp)
{
    bool set = client->opt == NBD_OPT_SET_META_CONTEXT;
    g_autofree char *name = NULL;
    NBDMetaContexts sel = { 0 };
    NBDExport *exp;
    uint8_t buf[4];
    uint32_t namelen, nqueries, i;
    size_t j;
    int ret = -1;

    if (set) {
        nbd_meta_contexts_clear(&client->contexts);
    }
    if (!client->structured_reply) {
        return nbd_opt_invalid(client, NBD_REP_ERR_INVALID, errp,
                               "request option '%s' when structured reply "
                               "is not negotiated",
                               nbd_opt_lookup(client->opt));
    }
    if (client->optlen < 8) {
        return nbd_opt_invalid(client, NBD_REP_ERR_INVALID, errp,
                               "overall request too short");
    }
    if (nbd_opt_read(client, buf, 4, errp) < 0) {
        return -1;
    }
    namelen = ldl_be(buf);
    if (namelen > client->optlen - 4) {
        return nbd_opt_invalid(client, NBD_REP_ERR_INVALID, errp,
                               "name length is incorrect");
    }
    if (namelen > NBD_MAX_STRING_SIZE) {
        return nbd_opt_invalid(client, NBD_REP_ERR_INVALID, errp,
                               "export name too long");
    }
    name = g_malloc(namelen + 1);
    if (nbd_opt_read(client, name, namelen, errp) < 0) {
        return -1;
    }
    name[namelen] = '\0';
    exp = nbd_export_find(name);
    if (!exp) {
        return nbd_opt_invalid(client, NBD_REP_ERR_UNKNOWN, errp,
                               "export '%s' not present", name);
    }
    /* Reading yields: keep exp alive meanwhile */
    blk_exp_ref(&exp->common);
    if (nbd_opt_read(client, buf, 4, errp) < 0) {
        goto out;
    }
    nqueries = ldl_be(buf);
    sel.exp = exp;
    sel.bitmaps = g_new0(bool, exp->nr_bitmaps + 1);

    if (nqueries == 0 && !set) {
        nbd_meta_match(exp, &sel, "base:", true);
        nbd_meta_match(exp, &sel, "qemu:", true);
    }
    for (i = 0; i < nqueries; i++) {
        uint32_t qlen;
        g_autofree char *query = NULL;

        if (client->optlen < 4) {
            ret = nbd_opt_invalid(client, NBD_REP_ERR_INVALID, errp,
                                  "query count does not match the payload");
            goto out;
        }
        if (nbd_opt_read(client, buf, 4, errp) < 0) {
            goto out;
        }
        qlen = ldl_be(buf);
        if (qlen > client->optlen) {
            ret = nbd_opt_invalid(client, NBD_REP_ERR_INVALID, errp,
                                  "query length is incorrect");
            goto out;
        }
        if (qlen > NBD_MAX_STRING_SIZE) {
            /* Too long to be one of ours: skip it */
            if (co_channel_skip(client->ch, qlen, errp) < 0) {
                goto out;
            }
            client->optlen -= qlen;
            continue;
        }
        query = g_malloc(qlen + 1);
        if (nbd_opt_read(client, query, qlen, errp) < 0) {
            goto out;
        }
        query[qlen] = '\0';
        trace(nbd_negotiate_meta_query, "%s '%s'",
              set ? "set" : "list", query);
        nbd_meta_match(exp, &sel, query, !set);
    }
    if (client->optlen) {
        ret = nbd_opt_invalid(client, NBD_REP_ERR_INVALID, errp,
                              "unexpected data after the queries");
        goto out;
    }
    if (nbd_send_meta_selection(client, exp, &sel, errp) < 0) {
        goto out;
    }
    ret = nbd_send_rep(client, NBD_REP_ACK, NULL, 0, errp);
    if (ret == 0 && set && !exp->shutting_down) {
        sel.count = sel.base_allocation + sel.allocation_depth;
        for (j = 0; j < exp->nr_bitmaps; j++) {
            sel.count += sel.bitmaps[j];
        }
        client->contexts = sel;
        sel.bitmaps = NULL;
    }

out:
    g_free(sel.bitmaps);
    blk_exp_unref(&exp->common);
    return ret;
}

/* ---- extents ---- */

/* One extent starting at @offset: its length (*pnum) and flags */
typedef int coroutine_fn NBDExtentFn(NBDExport *exp, size_t idx,
                                     int64_t offset, int64_t bytes,
                                     int64_t *pnum, uint32_t *flags);

static int coroutine_fn nbd_extent_allocation(NBDExport *exp, size_t idx,
                                              int64_t offset, int64_t bytes,
                                              int64_t *pnum, uint32_t *flags)
{
    int ret = bdrv_co_block_status_above(blk_bs(exp->common.blk), NULL, true,
                                         offset, bytes, pnum, NULL, NULL,
                                         NULL);

    if (ret < 0) {
        return ret;
    }
    *flags = (ret & BDRV_BLOCK_DATA ? 0 : NBD_STATE_HOLE) |
             (ret & BDRV_BLOCK_ZERO ? NBD_STATE_ZERO : 0);
    return 0;
}

static int coroutine_fn nbd_extent_depth(NBDExport *exp, size_t idx,
                                         int64_t offset, int64_t bytes,
                                         int64_t *pnum, uint32_t *flags)
{
    int ret = bdrv_co_is_allocated_above(blk_bs(exp->common.blk), NULL,
                                         false, offset, bytes, pnum);

    if (ret < 0) {
        return ret;
    }
    *flags = ret;
    return 0;
}

static int coroutine_fn nbd_extent_bitmap(NBDExport *exp, size_t idx,
                                          int64_t offset, int64_t bytes,
                                          int64_t *pnum, uint32_t *flags)
{
    bool dirty = bitmap_ops->status(exp->bitmaps[idx].handle, offset, bytes,
                                    pnum);

    *flags = dirty ? NBD_STATE_DIRTY : 0;
    return 0;
}

static int coroutine_fn nbd_collect_extents(NBDExport *exp, NBDExtentFn *fn,
                                            size_t idx, uint64_t offset,
                                            uint32_t length, bool req_one,
                                            NBDBlockStatusReply *reply)
{
    size_t alloc = 16;
    uint64_t end = offset + length;

    reply->descs = g_new(uint32_t, alloc * 2);
    reply->nr_extents = 0;
    while (offset < end) {
        int64_t pnum = 0;
        uint32_t flags = 0;
        int ret = fn(exp, idx, offset, end - offset, &pnum, &flags);
        size_t n = reply->nr_extents;

        if (ret < 0) {
            g_free(reply->descs);
            reply->descs = NULL;
            return ret;
        }
        if (pnum <= 0) {
            break;
        }
        pnum = MIN((uint64_t)pnum, end - offset);
        if (n && ldl_be(&reply->descs[2 * n - 1]) == flags) {
            stl_be(&reply->descs[2 * n - 2],
                   ldl_be(&reply->descs[2 * n - 2]) + pnum);
        } else {
            if (n == NBD_MAX_EXTENTS || (req_one && n == 1)) {
                break;
            }
            if (n == alloc) {
                alloc *= 2;
                reply->descs = g_renew(uint32_t, reply->descs, alloc * 2);
            }
            stl_be(&reply->descs[2 * n], pnum);
            stl_be(&reply->descs[2 * n + 1], flags);
            reply->nr_extents++;
        }
        offset += pnum;
    }
    if (reply->nr_extents == 0) {
        g_free(reply->descs);
        reply->descs = NULL;
        return -EIO;
    }
    return 0;
}

int coroutine_fn nbd_co_block_status(NBDClient *client, uint64_t offset,
                                     uint32_t length, bool req_one,
                                     NBDBlockStatusReply **replies,
                                     size_t *nr_replies)
{
    NBDMetaContexts *ctxs = &client->contexts;
    NBDExport *exp = client->exp;
    NBDBlockStatusReply *r = g_new0(NBDBlockStatusReply, ctxs->count);
    size_t n = 0, i;
    int ret = 0;

    assert(ctxs->exp == exp);
    if (ctxs->base_allocation) {
        r[n].context_id = NBD_META_ID_BASE_ALLOCATION;
        ret = nbd_collect_extents(exp, nbd_extent_allocation, 0, offset,
                                  length, req_one, &r[n++]);
    }
    if (ret == 0 && ctxs->allocation_depth) {
        r[n].context_id = NBD_META_ID_ALLOCATION_DEPTH;
        ret = nbd_collect_extents(exp, nbd_extent_depth, 0, offset, length,
                                  req_one, &r[n++]);
    }
    for (i = 0; ret == 0 && i < exp->nr_bitmaps; i++) {
        if (ctxs->bitmaps[i]) {
            r[n].context_id = NBD_META_ID_DIRTY_BITMAP + i;
            ret = nbd_collect_extents(exp, nbd_extent_bitmap, i, offset,
                                      length, req_one, &r[n++]);
        }
    }
    if (ret < 0) {
        for (i = 0; i < n; i++) {
            g_free(r[i].descs);
        }
        g_free(r);
        return ret;
    }
    *replies = r;
    *nr_replies = n;
    return 0;
}

int coroutine_fn nbd_co_zero_status(NBDExport *exp, int64_t offset,
                                    int64_t bytes, int64_t *pnum,
                                    bool *is_zero)
{
    int ret = bdrv_co_block_status_above(blk_bs(exp->common.blk), NULL, true,
                                         offset, bytes, pnum, NULL, NULL,
                                         NULL);

    if (ret < 0) {
        return ret;
    }
    *is_zero = ret & BDRV_BLOCK_ZERO;
    return 0;
}
