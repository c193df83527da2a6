/*
 * Block layer: the node graph.
 *
 * A BlockDriverState is a node; BdrvChild is an edge from a parent (another
 * node, or a BlockBackend/job acting as a "root" parent) to a child node.
 * Each node keeps its children and its parents, so permissions can be
 * computed both ways:
 *
 *   parents' (perm, shared) --cumulate--> node --driver child_perm--> child
 *
 * A permission update is two-phase, as in QEMU: the check phase walks the
 * subtree below the node whose parents changed, computes pending
 * permissions for every edge (c->new_perm) and lets protocol drivers try
 * to apply them (file locks); then either commit (edges take the new
 * values, drivers' set_perm) or abort (drivers' abort_perm_update).  A
 * conflict -- some parent takes what another does not share, or anyone
 * wants to write a read-only node -- fails the check with QEMU's message.
 *
 * Node lifetime: bdrv_open returns a reference; attaching a node as a
 * child takes one; bdrv_unref of the last reference closes the node and
 * drops its children.  Nodes created by blockdev-add also hold a
 * "monitor" reference (monitor_owned) dropped by blockdev-del.
 *
 * Option parsing is in block-opts.c, op blockers at the end of this file,
 * the request path in io.c.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/cutils.h"
#include "qemu/memalign.h"
#include "qemu/trace.h"
#include "monitor/json-stream.h"

static GQueue all_bdrv_states = G_QUEUE_INIT;
static GSList *bdrv_drivers;
static bool bdrv_initialized;

/* ---- drivers ---- */

void bdrv_register(BlockDriver *drv)
{
    if (!g_slist_find(bdrv_drivers, drv)) {
        bdrv_drivers = g_slist_append(bdrv_drivers, drv);
    }
}

/* The drivers built into every program (see block_int.h). */
void bdrv_init(void)
{
    if (bdrv_initialized) {
        return;
    }
    bdrv_initialized = true;
    bdrv_register(&bdrv_file);
    bdrv_register(&bdrv_raw);
    bdrv_register(&bdrv_null_co);
    bdrv_register(&bdrv_blkdebug);
    bdrv_register(&bdrv_qcow2);
    bdrv_register(&bdrv_nbd);
    bdrv_register(&bdrv_nbd_tcp);
    bdrv_register(&bdrv_nbd_unix);
}

BlockDriver *bdrv_find_format(const char *format_name)
{
    GSList *l;

    bdrv_init();
    for (l = bdrv_drivers; l; l = l->next) {
        BlockDriver *drv = l->data;

        if (!strcmp(drv->format_name, format_name)) {
            return drv;
        }
    }
    return NULL;
}

void bdrv_iterate_format(void (*it)(void *opaque, const char *name),
                         void *opaque)
{
    GSList *l;

    bdrv_init();
    for (l = bdrv_drivers; l; l = l->next) {
        it(opaque, ((BlockDriver *)l->data)->format_name);
    }
}

static BlockDriver *bdrv_find_protocol(const char *filename)
{
    GSList *l;

    bdrv_init();
    for (l = bdrv_drivers; l; l = l->next) {
        BlockDriver *drv = l->data;
        size_t n;

        if (!drv->protocol_name) {
            continue;
        }
        n = strlen(drv->protocol_name);
        if (!strncmp(filename, drv->protocol_name, n) && filename[n] == ':') {
            return drv;
        }
    }
    return &bdrv_file;
}

/* ---- names and lookup ---- */

bool bdrv_node_name_valid(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n > 127 || !g_ascii_isalpha(name[0])) {
        return false;
    }
    for (i = 1; i < n; i++) {
        if (!g_ascii_isalnum(name[i]) && !strchr("-._", name[i])) {
            return false;
        }
    }
    return true;
}

BlockDriverState *bdrv_find_node(const char *node_name)
{
    GList *l;

    for (l = all_bdrv_states.head; l; l = l->next) {
        BlockDriverState *bs = l->data;

        if (!strcmp(bs->node_name, node_name)) {
            return bs;
        }
    }
    return NULL;
}

BlockDriverState *bdrv_next_node(BlockDriverState *bs)
{
    GList *l;

    if (!bs) {
        return all_bdrv_states.head ? all_bdrv_states.head->data : NULL;
    }
    l = g_queue_find(&all_bdrv_states, bs);
    return l && l->next ? l->next->data : NULL;
}

BlockDriverState *bdrv_next_monitor_owned(BlockDriverState *bs)
{
    do {
        bs = bdrv_next_node(bs);
    } while (bs && !bs->monitor_owned);
    return bs;
}

void bdrv_set_monitor_owned(BlockDriverState *bs)
{
    if (!bs->monitor_owned) {
        bs->monitor_owned = true;
        bdrv_ref(bs);
    }
}

BlockDriverState *bdrv_lookup_bs(const char *device, const char *node_name,
                                 Error **errp)
{
    BlockDriverState *bs;

    if (device) {
        BlockBackend *blk = blk_by_name(device);

        if (blk) {
            bs = blk_bs(blk);
            if (!bs) {
                error_setg(errp, "Device '%s' has no medium", device);
            }
            return bs;
        }
    }
    if (node_name) {
        bs = bdrv_find_node(node_name);
        if (bs) {
            return bs;
        }
    }
    error_setg(errp, "Cannot find device='%s' nor node-name='%s'",
               device ? device : "", node_name ? node_name : "");
    return NULL;
}

static bool bdrv_assign_node_name(BlockDriverState *bs, const char *name,
                                  Error **errp)
{
    static uint64_t id_counter;

    if (!name) {
        /* QEMU's id_generate(ID_BLOCK): "#block" counter + 2 random digits */
        do {
            snprintf(bs->node_name, sizeof(bs->node_name),
                     "#block%" PRIu64 "%02d", id_counter++,
                     g_random_int_range(0, 100));
        } while (bdrv_find_node(bs->node_name));
        bs->implicit_name = true;
        return true;
    }
    if (!bdrv_node_name_valid(name)) {
        error_setg(errp, "Invalid node-name: '%s'", name);
        return false;
    }
    if (blk_by_name(name)) {
        error_setg(errp, "node-name=%s is conflicting with a device id", name);
        return false;
    }
    if (bdrv_find_node(name)) {
        error_setg(errp, "Duplicate nodes with node-name='%s'", name);
        return false;
    }
    g_strlcpy(bs->node_name, name, sizeof(bs->node_name));
    return true;
}

const char *bdrv_get_node_name(const BlockDriverState *bs)
{
    return bs->node_name;
}

const char *bdrv_get_device_name(const BlockDriverState *bs)
{
    GList *l;

    for (l = bs->parents; l; l = l->next) {
        BdrvChild *c = l->data;

        if (!c->parent_bs && c->opaque &&
            !strcmp(c->name, "root") && blk_name(c->opaque)[0]) {
            return blk_name(c->opaque);
        }
    }
    return "";
}

const char *bdrv_get_device_or_node_name(const BlockDriverState *bs)
{
    const char *d = bdrv_get_device_name(bs);

    return d[0] ? d : bs->node_name;
}

const char *bdrv_get_format_name(BlockDriverState *bs)
{
    return bs->drv ? bs->drv->format_name : "";
}

const char *bdrv_get_filename(BlockDriverState *bs)
{
    while (bs) {
        if (bs->filename[0]) {
            return bs->filename;
        }
        bs = bs->file ? bs->file->bs : NULL;
    }
    return "";
}

BlockDriver *bdrv_get_driver(BlockDriverState *bs)
{
    return bs->drv;
}

bool bdrv_is_read_only(BlockDriverState *bs)
{
    return bs->read_only;
}

int bdrv_get_open_flags(BlockDriverState *bs)
{
    return bs->open_flags;
}

int bdrv_get_refcnt(BlockDriverState *bs)
{
    return bs->refcnt;
}

BlockDriverState *bdrv_file_bs(BlockDriverState *bs)
{
    return bs->file ? bs->file->bs : NULL;
}

BlockDriverState *bdrv_backing_bs(BlockDriverState *bs)
{
    return bs->backing ? bs->backing->bs : NULL;
}

BdrvChild *bdrv_filter_child(BlockDriverState *bs)
{
    GList *l;

    for (l = bs->children; l; l = l->next) {
        BdrvChild *c = l->data;

        if (c->role & BDRV_CHILD_FILTERED) {
            return c;
        }
    }
    return NULL;
}

BlockDriverState *bdrv_skip_filters(BlockDriverState *bs)
{
    BdrvChild *c;

    while (bs && (c = bdrv_filter_child(bs))) {
        bs = c->bs;
    }
    return bs;
}

bool bdrv_chain_contains(BlockDriverState *bs, BlockDriverState *base)
{
    while (bs) {
        BlockDriverState *next = bdrv_backing_bs(bs);
        BdrvChild *f = bdrv_filter_child(bs);

        if (!next && f) {
            next = f->bs;
        }
        if (next == base) {
            return true;
        }
        bs = next;
    }
    return false;
}

BdrvChild *bdrv_find_child(BlockDriverState *parent, const char *name)
{
    GList *l;

    for (l = parent->children; l; l = l->next) {
        BdrvChild *c = l->data;

        if (!strcmp(c->name, name)) {
            return c;
        }
    }
    return NULL;
}

/* ---- permissions ---- */

static const char *const perm_names[BLK_PERM_BITS] = {
    "consistent read", "write", "write unchanged", "resize",
};

char *bdrv_perm_names(uint64_t perm)
{
    GString *s = g_string_new("");
    int i;

    for (i = 0; i < BLK_PERM_BITS; i++) {
        if (perm & (1ULL << i)) {
            if (s->len) {
                g_string_append(s, ", ");
            }
            g_string_append(s, perm_names[i]);
        }
    }
    return g_string_free(s, FALSE);
}

static uint64_t child_eff_perm(BdrvChild *c)
{
    return c->perm_update_pending ? c->new_perm : c->perm;
}

static uint64_t child_eff_shared(BdrvChild *c)
{
    return c->perm_update_pending ? c->new_shared : c->shared_perm;
}

void bdrv_get_cumulative_perm(BlockDriverState *bs, uint64_t *perm,
                              uint64_t *shared)
{
    GList *l;

    *perm = 0;
    *shared = BLK_PERM_ALL;
    for (l = bs->parents; l; l = l->next) {
        *perm |= child_eff_perm(l->data);
        *shared &= child_eff_shared(l->data);
    }
}

static char *child_user_desc(BdrvChild *c)
{
    if (c->parent_bs) {
        return g_strdup_printf("node '%s'", c->parent_bs->node_name);
    }
    return g_strdup(c->parent_desc ? c->parent_desc : "a user");
}

void bdrv_default_perms(BlockDriverState *bs, BdrvChild *c, unsigned role,
                        uint64_t perm, uint64_t shared,
                        uint64_t *nperm, uint64_t *nshared)
{
    if (role & BDRV_CHILD_FILTERED) {
        /* same data: pass everything through */
        *nperm = perm & BLK_PERM_ALL;
        *nshared = shared & BLK_PERM_ALL;
        return;
    }
    if (role & BDRV_CHILD_COW) {
        /* backing files are only read; others may write if ours may */
        *nperm = perm & BLK_PERM_CONSISTENT_READ;
        *nshared = (shared & BLK_PERM_WRITE) ?
                   (BLK_PERM_WRITE | BLK_PERM_RESIZE) : 0;
        *nshared |= BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED;
        return;
    }
    /* storage child (data and/or metadata) */
    *nperm = perm & (BLK_PERM_WRITE | BLK_PERM_WRITE_UNCHANGED |
                     BLK_PERM_CONSISTENT_READ | BLK_PERM_RESIZE);
    *nshared = shared;
    if (role & BDRV_CHILD_METADATA) {
        *nperm |= BLK_PERM_CONSISTENT_READ;
        if (!bs->read_only) {
            *nperm |= BLK_PERM_WRITE | BLK_PERM_RESIZE;
        }
        if (!(bs->open_flags & BDRV_O_FORCE_SHARE)) {
            *nshared &= ~(BLK_PERM_WRITE | BLK_PERM_RESIZE);
        }
    }
    *nshared |= BLK_PERM_WRITE_UNCHANGED;
}

static void bdrv_child_perm(BlockDriverState *bs, BdrvChild *c,
                            uint64_t perm, uint64_t shared,
                            uint64_t *nperm, uint64_t *nshared)
{
    if (bs->drv && bs->drv->bdrv_child_perm) {
        bs->drv->bdrv_child_perm(bs, c, c->role, perm, shared, nperm,
                                 nshared);
    } else {
        bdrv_default_perms(bs, c, c->role, perm, shared, nperm, nshared);
    }
    if (bs->open_flags & BDRV_O_FORCE_SHARE) {
        *nshared = BLK_PERM_ALL;
    }
}

typedef struct PermTxn {
    GSList *children;   /* BdrvChild * with pending perms */
    GSList *nodes;      /* nodes whose driver check_perm succeeded */
} PermTxn;

static int bdrv_node_check_perm(BlockDriverState *bs, PermTxn *txn,
                                Error **errp)
{
    uint64_t perm, shared;
    GList *l, *m;

    bdrv_get_cumulative_perm(bs, &perm, &shared);

    for (l = bs->parents; l; l = l->next) {
        BdrvChild *a = l->data;

        for (m = bs->parents; m; m = m->next) {
            BdrvChild *b = m->data;
            uint64_t conflict;

            if (a == b) {
                continue;
            }
            conflict = child_eff_perm(b) & ~child_eff_shared(a);
            if (conflict) {
                g_autofree char *names = bdrv_perm_names(conflict);
                g_autofree char *bu = child_user_desc(b);
                g_autofree char *au = child_user_desc(a);

                error_setg(errp, "Permission conflict on node '%s': "
                           "permissions '%s' are both required by %s (uses "
                           "node '%s' as '%s' child) and unshared by %s (uses "
                           "node '%s' as '%s' child).",
                           bs->node_name, names, bu, bs->node_name, b->name,
                           au, bs->node_name, a->name);
                return -EPERM;
            }
        }
    }
    if ((perm & (BLK_PERM_WRITE | BLK_PERM_WRITE_UNCHANGED)) &&
        bs->read_only) {
        error_setg(errp, "Block node is read-only");
        return -EPERM;
    }
    if (bs->drv && bs->drv->bdrv_check_perm) {
        int ret = bs->drv->bdrv_check_perm(bs, perm, shared, errp);

        if (ret < 0) {
            return ret;
        }
        if (!g_slist_find(txn->nodes, bs)) {
            txn->nodes = g_slist_prepend(txn->nodes, bs);
        }
    }
    for (l = bs->children; l; l = l->next) {
        BdrvChild *c = l->data;
        uint64_t nperm, nshared;
        int ret;

        bdrv_child_perm(bs, c, perm, shared, &nperm, &nshared);
        c->new_perm = nperm;
        c->new_shared = nshared;
        c->perm_update_pending = true;
        if (!g_slist_find(txn->children, c)) {
            txn->children = g_slist_prepend(txn->children, c);
        }
        ret = bdrv_node_check_perm(c->bs, txn, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static void perm_txn_finish(PermTxn *txn, bool commit)
{
    GSList *l;

    for (l = txn->children; l; l = l->next) {
        BdrvChild *c = l->data;

        if (commit) {
            c->perm = c->new_perm;
            c->shared_perm = c->new_shared;
        }
        c->perm_update_pending = false;
    }
    for (l = txn->nodes; l; l = l->next) {
        BlockDriverState *bs = l->data;

        if (commit) {
            bdrv_get_cumulative_perm(bs, &bs->cur_perm, &bs->cur_shared);
            if (bs->drv->bdrv_set_perm) {
                bs->drv->bdrv_set_perm(bs, bs->cur_perm, bs->cur_shared);
            }
        } else if (bs->drv->bdrv_abort_perm_update) {
            bs->drv->bdrv_abort_perm_update(bs);
        }
    }
    g_slist_free(txn->children);
    g_slist_free(txn->nodes);
    txn->children = txn->nodes = NULL;
}

/* Update perms of bs's subtree; extra: an edge into bs with pending perms */
static int bdrv_update_perms(BlockDriverState *bs, BdrvChild *extra,
                             Error **errp)
{
    PermTxn txn = { NULL, NULL };
    int ret;

    if (extra) {
        txn.children = g_slist_prepend(txn.children, extra);
    }
    ret = bdrv_node_check_perm(bs, &txn, errp);
    perm_txn_finish(&txn, ret == 0);
    if (ret == 0) {
        bdrv_get_cumulative_perm(bs, &bs->cur_perm, &bs->cur_shared);
    }
    trace(bdrv_update_perms, "bs %s ret %d perm 0x%" PRIx64
          " shared 0x%" PRIx64, bs->node_name, ret, bs->cur_perm,
          bs->cur_shared);
    return ret;
}

int bdrv_refresh_perms(BlockDriverState *bs, Error **errp)
{
    return bdrv_update_perms(bs, NULL, errp);
}

int bdrv_child_try_set_perm(BdrvChild *c, uint64_t perm, uint64_t shared,
                            Error **errp)
{
    int ret;

    c->new_perm = perm;
    c->new_shared = shared;
    c->perm_update_pending = true;
    ret = bdrv_update_perms(c->bs, c, errp);
    return ret;
}

static BdrvChild *bdrv_attach_edge(BdrvChild *c, uint64_t perm,
                                   uint64_t shared, Error **errp)
{
    BlockDriverState *bs = c->bs;

    c->perm = 0;
    c->shared_perm = BLK_PERM_ALL;
    c->new_perm = perm;
    c->new_shared = shared;
    c->perm_update_pending = true;
    bs->parents = g_list_append(bs->parents, c);
    if (bdrv_update_perms(bs, c, errp) < 0) {
        bs->parents = g_list_remove(bs->parents, c);
        return NULL;
    }
    bdrv_ref(bs);
    return c;
}

static void bdrv_child_free(BdrvChild *c)
{
    g_free(c->name);
    g_free(c->parent_desc);
    g_free(c);
}

BdrvChild *bdrv_root_attach_child(BlockDriverState *child_bs,
                                  const char *child_name,
                                  const char *parent_desc, unsigned role,
                                  uint64_t perm, uint64_t shared,
                                  void *opaque, Error **errp)
{
    BdrvChild *c = g_new0(BdrvChild, 1);

    c->bs = child_bs;
    c->name = g_strdup(child_name);
    c->role = role;
    c->opaque = opaque;
    c->parent_desc = g_strdup(parent_desc);
    if (!bdrv_attach_edge(c, perm, shared, errp)) {
        bdrv_child_free(c);
        return NULL;
    }
    return c;
}

/* Detach edge c from its child node and drop the child's reference */
static void bdrv_detach_edge(BdrvChild *c)
{
    BlockDriverState *bs = c->bs;

    bs->parents = g_list_remove(bs->parents, c);
    /* loosening permissions cannot fail */
    bdrv_update_perms(bs, NULL, NULL);
    bdrv_child_free(c);
    bdrv_unref(bs);
}

void bdrv_root_unref_child(BdrvChild *child)
{
    bdrv_detach_edge(child);
}

BdrvChild *bdrv_attach_child(BlockDriverState *parent,
                             BlockDriverState *child_bs, const char *name,
                             unsigned role, Error **errp)
{
    BdrvChild *c = g_new0(BdrvChild, 1);
    uint64_t pperm, pshared, perm, shared;

    if (child_bs == parent || bdrv_chain_contains(child_bs, parent)) {
        error_setg(errp, "Making '%s' a %s child of '%s' would create a "
                   "cycle", child_bs->node_name, name, parent->node_name);
        g_free(c);
        return NULL;
    }
    c->bs = child_bs;
    c->name = g_strdup(name);
    c->role = role;
    c->parent_bs = parent;
    bdrv_get_cumulative_perm(parent, &pperm, &pshared);
    bdrv_child_perm(parent, c, pperm, pshared, &perm, &shared);
    if (!bdrv_attach_edge(c, perm, shared, errp)) {
        bdrv_child_free(c);
        return NULL;
    }
    parent->children = g_list_append(parent->children, c);
    if (role & BDRV_CHILD_PRIMARY) {
        parent->file = c;
    }
    if (role & BDRV_CHILD_COW) {
        parent->backing = c;
    }
    trace(bdrv_attach_child, "parent %s child %s name %s role 0x%x",
          parent->node_name, child_bs->node_name, name, role);
    return c;
}

void bdrv_unref_child(BlockDriverState *parent, BdrvChild *child)
{
    if (!child) {
        return;
    }
    assert(child->parent_bs == parent);
    parent->children = g_list_remove(parent->children, child);
    if (parent->file == child) {
        parent->file = NULL;
    }
    if (parent->backing == child) {
        parent->backing = NULL;
    }
    bdrv_detach_edge(child);
}

bool bdrv_set_backing_hd(BlockDriverState *bs, BlockDriverState *backing_hd,
                         Error **errp)
{
    BlockDriverState *old_bs = bs->backing ? bs->backing->bs : NULL;
    bool ok = true;

    if (bs->drv && !bs->drv->supports_backing && backing_hd) {
        error_setg(errp, "Driver '%s' of node '%s' does not support backing "
                   "files", bs->drv->format_name, bs->node_name);
        return false;
    }
    if (old_bs) {
        /* keep the old node alive in case we must roll back */
        bdrv_ref(old_bs);
        bdrv_unref_child(bs, bs->backing);
    }
    if (backing_hd &&
        !bdrv_attach_child(bs, backing_hd, "backing", BDRV_CHILD_COW, errp)) {
        ok = false;
        if (old_bs) {
            bdrv_attach_child(bs, old_bs, "backing", BDRV_CHILD_COW, NULL);
        }
    }
    bdrv_unref(old_bs);
    bdrv_refresh_limits(bs, NULL);
    return ok;
}

/* ---- limits ---- */

void bdrv_refresh_limits(BlockDriverState *bs, Error **errp)
{
    BdrvChild *c = bs->file ? bs->file : bdrv_filter_child(bs);

    memset(&bs->bl, 0, sizeof(bs->bl));
    bs->bl.request_alignment = 1;
    bs->bl.min_mem_alignment = 1;
    bs->bl.opt_mem_alignment = QEMU_DEFAULT_IO_ALIGN;
    bs->bl.max_iov = IOV_MAX;
    if (c) {
        BlockLimits *cl = &c->bs->bl;

        bs->bl.max_transfer = cl->max_transfer;
        bs->bl.opt_transfer = cl->opt_transfer;
        bs->bl.min_mem_alignment = cl->min_mem_alignment;
        bs->bl.opt_mem_alignment = cl->opt_mem_alignment;
        bs->bl.max_iov = cl->max_iov;
    }
    if (bs->drv && bs->drv->bdrv_refresh_limits) {
        bs->drv->bdrv_refresh_limits(bs, errp);
    }
}

/* ---- open ---- */

static const char *const discard_names[] = {
    "ignore", "unmap", "off", "on", NULL,
};
static const char *const detect_zeroes_names[] = {
    "off", "on", "unmap", NULL,
};

static BlockDriverState *bdrv_new(void)
{
    BlockDriverState *bs = g_new0(BlockDriverState, 1);

    bs->refcnt = 1;
    bs->total_size = -1;
    g_queue_init(&bs->tracked_requests);
    notifier_with_return_list_init(&bs->before_write_notifiers);
    bs->write_hooks = g_array_new(false, false, sizeof(BdrvWriteHook));
    return bs;
}

static void bdrv_free(BlockDriverState *bs)
{
    int i;

    for (i = 0; i < BLOCK_OP_TYPE_MAX; i++) {
        g_slist_free(bs->op_blockers[i]);
    }
    g_array_free(bs->write_hooks, true);
    g_free(bs->opaque);
    g_free(bs);
}

static void bdrv_drop_children(BlockDriverState *bs)
{
    while (bs->children) {
        bdrv_unref_child(bs, g_list_last(bs->children)->data);
    }
}

static BlockDriverState *bdrv_open_filename(const char *filename,
                                            int flags, Error **errp);

/* Child options inherit these open flags from the parent */
#define BDRV_INHERITED_FLAGS (BDRV_O_RDWR | BDRV_O_NOCACHE | \
                              BDRV_O_NO_FLUSH | BDRV_O_UNMAP | \
                              BDRV_O_NATIVE_AIO | BDRV_O_IO_URING)

BdrvChild *bdrv_open_child(BlockDriverState *parent, json_t *options,
                           const char *name, unsigned role, bool allow_none,
                           Error **errp)
{
    g_autoptr(json_t) v = bdrv_opt_take(options, name);
    BlockDriverState *child_bs = NULL;
    int flags = parent->open_flags & BDRV_INHERITED_FLAGS;
    BdrvChild *c;

    if (parent->read_only) {
        flags &= ~BDRV_O_RDWR;
    }
    if (!v || json_is_null(v)) {
        if (!allow_none) {
            error_setg(errp, "A block device must be specified for \"%s\"",
                       name);
        }
        return NULL;
    }
    if (json_is_string(v)) {
        const char *ref = json_string_value(v);

        child_bs = bdrv_find_node(ref);
        if (child_bs) {
            bdrv_ref(child_bs);
        } else if (!strcmp(name, "file") || !strcmp(name, "image")) {
            child_bs = bdrv_open_filename(ref, flags, errp);
        } else {
            error_setg(errp, "Cannot find device='' nor node-name='%s'", ref);
        }
    } else if (json_is_object(v)) {
        child_bs = bdrv_open_flags(v, flags, errp);
    } else {
        error_setg(errp, "Invalid parameter type for '%s', expected: "
                   "BlockdevRef", name);
    }
    if (!child_bs) {
        return NULL;
    }
    c = bdrv_attach_child(parent, child_bs, name, role, errp);
    bdrv_unref(child_bs);
    return c;
}

static char *bdrv_backing_path(BlockDriverState *bs)
{
    const char *base = bdrv_get_filename(bs);
    g_autofree char *dir = NULL;

    if (g_path_is_absolute(bs->backing_file) || !base[0] ||
        strstr(bs->backing_file, "://")) {
        return g_strdup(bs->backing_file);
    }
    dir = g_path_get_dirname(base);
    return g_build_filename(dir, bs->backing_file, NULL);
}

static bool bdrv_open_backing(BlockDriverState *bs, json_t *opts, int flags,
                              Error **errp)
{
    g_autoptr(json_t) v = bdrv_opt_take(opts, "backing");
    BlockDriverState *backing = NULL;
    bool ok;

    if (v && json_is_null(v)) {
        return true;
    }
    flags &= BDRV_INHERITED_FLAGS & ~BDRV_O_RDWR;
    if (v && json_is_string(v)) {
        backing = bdrv_find_node(json_string_value(v));
        if (!backing) {
            error_setg(errp, "Cannot find device='' nor node-name='%s'",
                       json_string_value(v));
            return false;
        }
        bdrv_ref(backing);
    } else if (v && json_is_object(v)) {
        backing = bdrv_open_flags(v, flags, errp);
    } else if (v) {
        error_setg(errp, "Invalid parameter type for 'backing', expected: "
                   "BlockdevRefOrNull");
        return false;
    } else if (bs->backing_file[0] && !(flags & BDRV_O_NO_BACKING) &&
               !(bs->open_flags & BDRV_O_NO_BACKING)) {
        g_autofree char *path = bdrv_backing_path(bs);

        backing = bdrv_open_file(path, bs->backing_format[0] ?
                                 bs->backing_format : NULL, NULL, flags,
                                 errp);
        if (!backing) {
            error_prepend(errp, "Could not open backing file: ");
        }
    } else {
        return true;
    }
    if (!backing) {
        return false;
    }
    ok = bdrv_set_backing_hd(bs, backing, errp);
    bdrv_unref(backing);
    return ok;
}

BlockDriverState *bdrv_open(json_t *options, Error **errp)
{
    /* blockdev-add semantics: read-write unless read-only=on */
    return bdrv_open_flags(options, BDRV_O_RDWR, errp);
}

BlockDriverState *bdrv_open_flags(json_t *options, int flags, Error **errp)
{
    g_autoptr(json_t) opts = options ? json_deep_copy(options) : json_object();
    g_autofree char *driver = NULL, *node_name = NULL;
    bool read_only = !(flags & BDRV_O_RDWR), ro_given = false;
    bool auto_ro = false, direct = !!(flags & BDRV_O_NOCACHE);
    bool no_flush = !!(flags & BDRV_O_NO_FLUSH), force_share = false;
    int discard = (flags & BDRV_O_UNMAP) ? 1 : 0;
    int detect_zeroes = 0;
    BlockDriver *drv;
    BlockDriverState *bs;
    int ret;

    bdrv_init();
    if (!json_is_object(opts)) {
        error_setg(errp, "Invalid parameter type, expected: object");
        return NULL;
    }
    if (!bdrv_opt_get_str(opts, "driver", &driver, NULL, errp) ||
        !bdrv_opt_get_str(opts, "node-name", &node_name, NULL, errp) ||
        !bdrv_opt_get_bool(opts, "read-only", &read_only, &ro_given, errp) ||
        !bdrv_opt_get_bool(opts, "auto-read-only", &auto_ro, NULL, errp) ||
        !bdrv_opt_get_enum(opts, "discard", discard_names, &discard, NULL,
                           errp) ||
        !bdrv_opt_get_enum(opts, "detect-zeroes", detect_zeroes_names,
                           &detect_zeroes, NULL, errp) ||
        !bdrv_opt_get_bool(opts, "cache.direct", &direct, NULL, errp) ||
        !bdrv_opt_get_bool(opts, "cache.no-flush", &no_flush, NULL, errp) ||
        !bdrv_opt_get_bool(opts, "force-share", &force_share, NULL, errp)) {
        return NULL;
    }
    if (!driver) {
        error_setg(errp, "Parameter 'driver' is missing");
        return NULL;
    }
    drv = bdrv_find_format(driver);
    if (!drv) {
        error_setg(errp, "Unknown driver '%s'", driver);
        return NULL;
    }
    discard &= 1; /* "on" == "unmap", "off" == "ignore" */
    if (detect_zeroes == BLOCKDEV_DETECT_ZEROES_UNMAP && !discard) {
        error_setg(errp, "setting detect-zeroes to unmap is not allowed "
                   "without setting discard operation to unmap");
        return NULL;
    }
    if (force_share && !read_only) {
        error_setg(errp, "force-share=on can only be used with read-only "
                   "images");
        return NULL;
    }
    (void)ro_given;

    bs = bdrv_new();
    if (!bdrv_assign_node_name(bs, node_name, errp)) {
        bdrv_free(bs);
        return NULL;
    }
    bs->drv = drv;
    bs->read_only = read_only;
    bs->detect_zeroes = detect_zeroes;
    bs->open_flags = (flags & ~(BDRV_O_RDWR | BDRV_O_NOCACHE |
                                BDRV_O_NO_FLUSH | BDRV_O_UNMAP)) |
                     (read_only ? 0 : BDRV_O_RDWR) |
                     (direct ? BDRV_O_NOCACHE : 0) |
                     (no_flush ? BDRV_O_NO_FLUSH : 0) |
                     (discard ? BDRV_O_UNMAP : 0) |
                     (force_share ? BDRV_O_FORCE_SHARE : 0);
    bs->opaque = g_malloc0(drv->instance_size ? drv->instance_size : 1);
    bs->supported_write_flags = drv->supported_write_flags;
    bs->supported_zero_flags = drv->supported_zero_flags;
    /* visible for node-name references of its own children */
    g_queue_push_tail(&all_bdrv_states, bs);

    trace(bdrv_open_common, "bs %p node %s driver %s flags 0x%x", bs,
          bs->node_name, driver, bs->open_flags);
    ret = drv->bdrv_open(bs, opts, bs->open_flags, errp);
    if (ret < 0) {
        goto fail_open;
    }
    if (drv->supports_backing &&
        !bdrv_open_backing(bs, opts, bs->open_flags, errp)) {
        goto fail;
    }
    if (!bdrv_opt_check_empty(bs, opts, errp)) {
        goto fail;
    }
    bdrv_refresh_limits(bs, errp);
    if (bdrv_refresh_total_size(bs) < 0 && bs->total_size < 0) {
        error_setg(errp, "Could not get the size of node '%s'",
                   bs->node_name);
        goto fail;
    }
    return bs;

fail:
    if (drv->bdrv_close) {
        drv->bdrv_close(bs);
    }
fail_open:
    bdrv_drop_children(bs);
    g_queue_remove(&all_bdrv_states, bs);
    bdrv_free(bs);
    return NULL;
}

/* Protocol node for a plain filename ("blkdebug:conf:img", "x.img") */
static BlockDriverState *bdrv_open_filename(const char *filename, int flags,
                                            Error **errp)
{
    BlockDriver *proto = bdrv_find_protocol(filename);
    g_autoptr(json_t) opts = json_object();

    json_object_set_new(opts, "driver", json_string(proto->format_name));
    if (proto->bdrv_parse_filename) {
        Error *local_err = NULL;

        proto->bdrv_parse_filename(filename, opts, &local_err);
        if (local_err) {
            error_propagate(errp, local_err);
            return NULL;
        }
    } else {
        json_object_set_new(opts, "filename", json_string(filename));
    }
    return bdrv_open_flags(opts, flags, errp);
}

static BlockDriver *bdrv_probe_format(BlockDriverState *proto, Error **errp)
{
    uint8_t buf[2048] = { 0 };
    BlockDriver *best = &bdrv_raw;
    int best_score = 0;
    BdrvChild *c;
    int64_t len = MIN(bdrv_getlength(proto), (int64_t)sizeof(buf));
    GSList *l;

    c = bdrv_root_attach_child(proto, "probe", "format probing",
                               BDRV_CHILD_IMAGE, BLK_PERM_CONSISTENT_READ,
                               BLK_PERM_ALL, NULL, errp);
    if (!c) {
        return NULL;
    }
    bdrv_ref(proto);
    if (len > 0) {
        int ret = bdrv_pread(c, 0, len, buf, 0);

        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read image for "
                             "determining its format");
            bdrv_root_unref_child(c);
            bdrv_unref(proto);
            return NULL;
        }
    }
    bdrv_root_unref_child(c);
    bdrv_unref(proto);
    for (l = bdrv_drivers; l; l = l->next) {
        BlockDriver *drv = l->data;
        int score;

        if (!drv->bdrv_probe) {
            continue;
        }
        score = drv->bdrv_probe(buf, len < 0 ? 0 : len, proto->filename);
        if (score > best_score) {
            best_score = score;
            best = drv;
        }
    }
    return best;
}

/* Nest dotted keys ("file.filename") as QEMU's crumpled QDicts */
static bool bdrv_unflatten_opts(json_t *obj, Error **errp)
{
    const char *key;
    json_t *v;
    void *tmp;

    json_object_foreach_safe(obj, tmp, key, v) {
        const char *dot = strchr(key, '.');
        g_autofree char *head = NULL;
        json_t *sub;

        if (json_is_object(v) && !bdrv_unflatten_opts(v, errp)) {
            return false;
        }
        if (!dot) {
            continue;
        }
        head = g_strndup(key, dot - key);
        sub = json_object_get(obj, head);
        if (!sub) {
            sub = json_object();
            json_object_set_new(obj, head, sub);
        } else if (!json_is_object(sub)) {
            error_setg(errp, "Parameter '%s' used inconsistently", head);
            return false;
        }
        json_object_set(sub, dot + 1, v);
        json_object_del(obj, key);
        if (!bdrv_unflatten_opts(sub, errp)) {
            return false;
        }
    }
    return true;
}

/*
 * "json:{...}" file names, as QEMU: the object gives the options (explicit
 * options win over it).  Returns the merged options (new reference).
 */
static json_t *bdrv_parse_json_filename(const char *filename,
                                        json_t *options, Error **errp)
{
    Error *local_err = NULL;
    /* QEMU's JSON syntax: single-quoted strings are accepted too */
    json_t *obj = json_parse_string(filename + strlen("json:"), &local_err);
    const char *key;
    json_t *v;

    if (!obj) {
        error_propagate_prepend(errp, local_err,
                                "Could not parse the JSON options: ");
        return NULL;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        error_setg(errp, "Invalid JSON object given");
        return NULL;
    }
    if (!bdrv_unflatten_opts(obj, errp)) {
        json_decref(obj);
        return NULL;
    }
    if (options) {
        json_object_foreach(options, key, v) {
            json_object_set(obj, key, v);
        }
    }
    return obj;
}

BlockDriverState *bdrv_open_file(const char *filename, const char *format,
                                 json_t *options, int flags, Error **errp)
{
    g_autoptr(json_t) opts = NULL;
    g_autoptr(json_t) file_opts = NULL;
    g_autoptr(json_t) driver = NULL;   /* keeps format alive */
    BlockDriverState *proto, *bs;
    BlockDriver *drv = NULL;
    int pflags = flags & BDRV_INHERITED_FLAGS;

    bdrv_init();
    if (filename && g_str_has_prefix(filename, "json:")) {
        opts = bdrv_parse_json_filename(filename, options, errp);
        if (!opts) {
            return NULL;
        }
        filename = NULL;
    } else {
        opts = options ? json_deep_copy(options) : json_object();
    }
    if (!format && json_is_string(json_object_get(opts, "driver"))) {
        format = json_string_value(json_object_get(opts, "driver"));
        json_incref(driver = json_object_get(opts, "driver"));
    }
    file_opts = bdrv_opt_take(opts, "file");
    if (format) {
        drv = bdrv_find_format(format);
        if (!drv) {
            error_setg(errp, "Unknown driver '%s'", format);
            return NULL;
        }
    }
    if (drv && !drv->is_format && !drv->is_filter) {
        /* the format is a protocol: open it directly */
        json_object_set_new(opts, "driver", json_string(drv->format_name));
        if (filename) {
            json_object_set_new(opts, "filename", json_string(filename));
        }
        return bdrv_open_flags(opts, flags, errp);
    }
    if (file_opts && json_is_object(file_opts)) {
        BlockDriver *p = bdrv_find_protocol(filename ? filename : "");
        const char *pname = json_string_value(json_object_get(file_opts,
                                                              "driver"));

        if (!pname) {
            json_object_set_new(file_opts, "driver",
                                json_string(p->format_name));
        }
        if (filename && !json_object_get(file_opts, "filename")) {
            if (p->bdrv_parse_filename &&
                (!pname || !strcmp(pname, p->format_name))) {
                /* "blkdebug::img" with file.* options: parse the name */
                Error *local_err = NULL;

                p->bdrv_parse_filename(filename, file_opts, &local_err);
                if (local_err) {
                    error_propagate(errp, local_err);
                    return NULL;
                }
            } else {
                json_object_set_new(file_opts, "filename",
                                    json_string(filename));
            }
        }
        proto = bdrv_open_flags(file_opts, pflags, errp);
    } else if (filename) {
        proto = bdrv_open_filename(filename, pflags, errp);
    } else {
        error_setg(errp, "The 'file' block driver requires a file name");
        return NULL;
    }
    if (!proto) {
        return NULL;
    }
    if (!drv) {
        drv = bdrv_probe_format(proto, errp);
        if (!drv) {
            bdrv_unref(proto);
            return NULL;
        }
    }
    json_object_set_new(opts, "driver", json_string(drv->format_name));
    json_object_set_new(opts, "file", json_string(proto->node_name));
    bs = bdrv_open_flags(opts, flags, errp);
    bdrv_unref(proto);
    return bs;
}

/* ---- refcounting and close ---- */

void bdrv_ref(BlockDriverState *bs)
{
    bs->refcnt++;
}

static void bdrv_close(BlockDriverState *bs)
{
    assert(!bs->parents);
    bs->closing = true;
    bdrv_drain(bs);
    /*
     * As QEMU: whatever was written through this node reaches the disk
     * when it is closed (blockdev-del, daemon exit).  This is what makes a
     * backup target durable; the job itself does not flush it.
     */
    if (bs->drv) {
        int ret = bdrv_flush(bs);

        /*
         * Silent, as in QEMU: a format driver reports what it failed to
         * write back in its .bdrv_close (qcow2: "Failed to flush the L2
         * table cache"), which tries again
         */
        trace(bdrv_close_flush, "bs %p node %s ret %d", bs, bs->node_name,
              ret);
        bdrv_drain(bs);
    }
    trace(bdrv_close, "bs %p node %s", bs, bs->node_name);
    if (bs->drv && bs->drv->bdrv_close) {
        bs->drv->bdrv_close(bs);
    }
    bdrv_drop_children(bs);
    g_queue_remove(&all_bdrv_states, bs);
    bdrv_free(bs);
}

void bdrv_unref(BlockDriverState *bs)
{
    if (!bs) {
        return;
    }
    assert(bs->refcnt > 0);
    if (--bs->refcnt == 0) {
        bdrv_close(bs);
    }
}

bool bdrv_delete_node(BlockDriverState *bs, Error **errp)
{
    if (!bs->monitor_owned) {
        error_setg(errp, "Node %s is not owned by the monitor",
                   bs->node_name);
        return false;
    }
    if (bdrv_op_is_blocked(bs, BLOCK_OP_TYPE_DRIVE_DEL, errp)) {
        return false;
    }
    if (bs->refcnt > 1) {
        error_setg(errp, "Block device %s is in use", bs->node_name);
        return false;
    }
    bs->monitor_owned = false;
    bdrv_unref(bs);
    return true;
}

/* ---- info, creation ---- */

int bdrv_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    memset(bdi, 0, sizeof(*bdi));
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (!bs->drv->bdrv_get_info) {
        BdrvChild *f = bdrv_filter_child(bs);

        return f ? bdrv_get_info(f->bs, bdi) : -ENOTSUP;
    }
    return bs->drv->bdrv_get_info(bs, bdi);
}

uint32_t bdrv_get_request_alignment(BlockDriverState *bs)
{
    return bs->bl.request_alignment;
}

size_t bdrv_opt_mem_align(BlockDriverState *bs)
{
    return MAX(bs->bl.opt_mem_alignment, bs->bl.min_mem_alignment);
}

void *qemu_try_blockalign(BlockDriverState *bs, size_t size)
{
    return qemu_try_blockalign_buf(bs ? bdrv_opt_mem_align(bs) : 0, size);
}

void *qemu_blockalign(BlockDriverState *bs, size_t size)
{
    return qemu_blockalign_buf(bs ? bdrv_opt_mem_align(bs) : 0, size);
}

void *qemu_blockalign0(BlockDriverState *bs, size_t size)
{
    void *p = qemu_blockalign(bs, size);

    memset(p, 0, size);
    return p;
}

typedef struct CreateCo {
    BlockDriver *drv;
    const char *filename;
    json_t *options;
    Error **errp;
    int ret;
} CreateCo;

static void coroutine_fn bdrv_create_co_entry(void *opaque)
{
    CreateCo *cco = opaque;

    cco->ret = cco->drv->bdrv_co_create_opts(cco->drv, cco->filename,
                                             cco->options, cco->errp);
}

int bdrv_create(BlockDriver *drv, const char *filename, json_t *options,
                Error **errp)
{
    g_autoptr(json_t) opts = options ? json_deep_copy(options)
                                     : json_object();
    CreateCo cco = { drv, filename, opts, errp, -EINPROGRESS };

    if (!drv->bdrv_co_create_opts) {
        error_setg(errp, "Driver '%s' does not support image creation",
                   drv->format_name);
        return -ENOTSUP;
    }
    qemu_co_run_sync(bdrv_create_co_entry, &cco);
    return cco.ret;
}

int bdrv_create_file(const char *filename, json_t *options, Error **errp)
{
    return bdrv_create(bdrv_find_protocol(filename), filename, options, errp);
}

/* ---- op blockers ---- */

static const char *const op_type_names[BLOCK_OP_TYPE_MAX] = {
    [BLOCK_OP_TYPE_BACKUP_SOURCE] = "backup-source",
    [BLOCK_OP_TYPE_BACKUP_TARGET] = "backup-target",
    [BLOCK_OP_TYPE_CHANGE] = "change",
    [BLOCK_OP_TYPE_COMMIT_SOURCE] = "commit-source",
    [BLOCK_OP_TYPE_COMMIT_TARGET] = "commit-target",
    [BLOCK_OP_TYPE_DATAPLANE] = "dataplane",
    [BLOCK_OP_TYPE_DRIVE_DEL] = "drive-del",
    [BLOCK_OP_TYPE_EJECT] = "eject",
    [BLOCK_OP_TYPE_EXTERNAL_SNAPSHOT] = "external-snapshot",
    [BLOCK_OP_TYPE_INTERNAL_SNAPSHOT] = "internal-snapshot",
    [BLOCK_OP_TYPE_INTERNAL_SNAPSHOT_DELETE] = "internal-snapshot-delete",
    [BLOCK_OP_TYPE_MIRROR_SOURCE] = "mirror-source",
    [BLOCK_OP_TYPE_MIRROR_TARGET] = "mirror-target",
    [BLOCK_OP_TYPE_RESIZE] = "resize",
    [BLOCK_OP_TYPE_STREAM] = "stream",
    [BLOCK_OP_TYPE_REPLACE] = "replace",
    [BLOCK_OP_TYPE_BITMAP] = "bitmap",
};

const char *bdrv_op_type_name(BlockOpType op)
{
    assert(op < BLOCK_OP_TYPE_MAX);
    return op_type_names[op];
}

bool bdrv_op_is_blocked(BlockDriverState *bs, BlockOpType op, Error **errp)
{
    assert(op < BLOCK_OP_TYPE_MAX);
    if (bs->op_blockers[op]) {
        Error *reason = bs->op_blockers[op]->data;

        error_setg(errp, "Node '%s' is busy: %s",
                   bdrv_get_device_or_node_name(bs),
                   error_get_pretty(reason));
        return true;
    }
    return false;
}

void bdrv_op_block(BlockDriverState *bs, BlockOpType op, Error *reason)
{
    assert(op < BLOCK_OP_TYPE_MAX);
    bs->op_blockers[op] = g_slist_prepend(bs->op_blockers[op], reason);
}

void bdrv_op_unblock(BlockDriverState *bs, BlockOpType op, Error *reason)
{
    assert(op < BLOCK_OP_TYPE_MAX);
    bs->op_blockers[op] = g_slist_remove(bs->op_blockers[op], reason);
}

void bdrv_op_block_all(BlockDriverState *bs, Error *reason)
{
    int i;

    for (i = 0; i < BLOCK_OP_TYPE_MAX; i++) {
        bdrv_op_block(bs, i, reason);
    }
}

void bdrv_op_unblock_all(BlockDriverState *bs, Error *reason)
{
    int i;

    for (i = 0; i < BLOCK_OP_TYPE_MAX; i++) {
        bdrv_op_unblock(bs, i, reason);
    }
}

bool bdrv_op_blocker_is_empty(BlockDriverState *bs)
{
    int i;

    for (i = 0; i < BLOCK_OP_TYPE_MAX; i++) {
        if (bs->op_blockers[i]) {
            return false;
        }
    }
    return true;
}
