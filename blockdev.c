/*
 * QMP handlers for the block graph: blockdev-add, blockdev-del,
 * query-named-block-nodes, query-block.
 *
 * Hand-written code is only the bodies: argument checking happened in
 * the generated marshalers (qapi/block-core.json).  Error texts are
 * QEMU's (blockdev.c, block/qapi.c), since clients match on them.
 *
 * The backup handlers are in blockdev-backup.c, transaction in
 * blockdev-transaction.c.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/blockdev.h"
#include "qapi/qobject-output-visitor.h"
#include "qapi-visit.h"
#include "qapi-commands.h"
#include "qemu/coroutine.h"
#include "qemu/trace.h"

/* ---- blockdev-add / blockdev-del ---- */

BlockDriverState *blockdev_add(BlockdevOptions *options, Error **errp)
{
    g_autoptr(json_t) tree = NULL;
    BlockDriverState *bs;
    Visitor *v;

    if (!options->node_name) {
        error_setg(errp, "'node-name' must be specified for the root node");
        return NULL;
    }
    v = qobject_output_visitor_new(&tree);
    if (!visit_type_BlockdevOptions(v, NULL, &options, errp)) {
        visit_free(v);
        return NULL;
    }
    visit_complete(v, &tree);
    visit_free(v);

    /*
     * In blockdev-add a string child reference names an existing node
     * (BlockdevRef); say so if there is none rather than trying it as a
     * file name.
     */
    {
        static const char *const refs[] = {
            "file", "backing", "image", "data-file", NULL
        };
        int i;

        for (i = 0; refs[i]; i++) {
            const char *ref = json_string_value(json_object_get(tree,
                                                                refs[i]));

            if (ref && !bdrv_lookup_bs(ref, ref, errp)) {
                return NULL;
            }
        }
    }

    bs = bdrv_open(tree, errp);
    if (!bs) {
        return NULL;
    }
    /* the monitor takes its own reference; drop bdrv_open's */
    bdrv_set_monitor_owned(bs);
    bdrv_unref(bs);
    trace(blockdev_add, "node %s driver %s", bdrv_get_node_name(bs),
          bdrv_get_format_name(bs));
    return bs;
}

void qmp_blockdev_add(BlockdevOptions *options, Error **errp)
{
    blockdev_add(options, errp);
}

/*
 * Does a BlockBackend (an export...) use the node?  QEMU's bdrv_has_blk():
 * BlockBackend roots are primary children without a parent node.  Block
 * job edges (role 0) do not count: a node a job holds is refused by the
 * job's op blocker instead, whose reason names the job ("Node 'x' is
 * busy: block device is in use by block job: backup").
 */
static bool bdrv_has_user(BlockDriverState *bs)
{
    GList *l;

    for (l = bs->parents; l; l = l->next) {
        BdrvChild *c = l->data;

        if (!c->parent_bs && (c->role & BDRV_CHILD_PRIMARY)) {
            return true;
        }
    }
    return false;
}

void qmp_blockdev_del(const char *node_name, Error **errp)
{
    BlockDriverState *bs = bdrv_find_node(node_name);

    if (!bs) {
        error_setg(errp, "Failed to find node with node-name='%s'",
                   node_name);
        return;
    }
    if (bdrv_has_user(bs)) {
        error_setg(errp, "Node %s is in use", node_name);
        return;
    }
    /* op blockers, monitor ownership and parents: block.c, same texts */
    if (!bdrv_delete_node(bs, errp)) {
        return;
    }
    trace(blockdev_del, "node %s", node_name);
}

/* ---- query-named-block-nodes ---- */

typedef struct AllocSizeCo {
    BlockDriverState *bs;
    int64_t ret;
} AllocSizeCo;

static int64_t coroutine_fn bdrv_co_allocated_size(BlockDriverState *bs)
{
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (bs->drv->bdrv_co_get_allocated_file_size) {
        return bs->drv->bdrv_co_get_allocated_file_size(bs);
    }
    if (bs->file) {
        return bdrv_co_allocated_size(bs->file->bs);
    }
    return -ENOTSUP;
}

static void coroutine_fn alloc_size_entry(void *opaque)
{
    AllocSizeCo *s = opaque;

    s->ret = bdrv_co_allocated_size(s->bs);
}

static int64_t bdrv_allocated_size(BlockDriverState *bs)
{
    AllocSizeCo s = { .bs = bs };

    qemu_co_run_sync(alloc_size_entry, &s);
    return s.ret;
}

/*
 * The next node down a chain: the backing node, or for a real filter
 * driver (blkdebug; not raw) its filtered child, as QEMU's
 * bdrv_filter_or_cow_bs().
 */
static BlockDriverState *filter_or_cow_bs(BlockDriverState *bs)
{
    BdrvChild *f;

    if (bdrv_backing_bs(bs)) {
        return bdrv_backing_bs(bs);
    }
    if (!bs->drv || !bs->drv->is_filter) {
        return NULL;
    }
    f = bdrv_filter_child(bs);
    return f ? f->bs : NULL;
}

/* QEMU's bs->filename: a format node shows its protocol node's file */
static const char *node_filename(BlockDriverState *bs)
{
    return bs->filename[0] ? bs->filename : bdrv_get_filename(bs);
}

static ImageInfo *bdrv_image_info(BlockDriverState *bs, bool flat)
{
    ImageInfo *info = g_new0(ImageInfo, 1);
    BlockDriverInfo bdi;
    int64_t size;

    info->filename = g_strdup(node_filename(bs));
    info->format = g_strdup(bdrv_get_format_name(bs));
    size = bdrv_getlength(bs);
    info->virtual_size = MAX(size, 0);
    size = bdrv_allocated_size(bs);
    if (size >= 0) {
        info->has_actual_size = true;
        info->actual_size = size;
    }
    if (bdrv_get_info(bs, &bdi) == 0) {
        if (bdi.cluster_size) {
            info->has_cluster_size = true;
            info->cluster_size = bdi.cluster_size;
        }
        info->has_dirty_flag = true;
        info->dirty_flag = bdi.is_dirty;
    }
    {
        BlockDriverState *backing = bdrv_backing_bs(bs);

        if (bs->backing_file[0]) {
            info->backing_filename = g_strdup(bs->backing_file);
        } else if (backing) {
            info->backing_filename = g_strdup(node_filename(backing));
        }
        if (backing) {
            info->full_backing_filename = g_strdup(node_filename(backing));
        }
        if (bs->backing_format[0]) {
            info->backing_filename_format = g_strdup(bs->backing_format);
        }
        backing = filter_or_cow_bs(bs);
        if (backing && !flat) {
            info->backing_image = bdrv_image_info(backing, false);
        }
    }
    return info;
}

BlockDeviceInfo *bdrv_block_device_info(BlockDriverState *bs, bool flat)
{
    BlockDeviceInfo *info = g_new0(BlockDeviceInfo, 1);
    BlockDriverState *backing = bdrv_backing_bs(bs);
    int flags = bdrv_get_open_flags(bs);

    info->file = g_strdup(node_filename(bs));
    info->node_name = g_strdup(bdrv_get_node_name(bs));
    info->ro = bdrv_is_read_only(bs);
    info->drv = g_strdup(bdrv_get_format_name(bs));
    info->encrypted = false;
    info->detect_zeroes = (BlockdevDetectZeroesOptions)bs->detect_zeroes;
    if (backing) {
        info->backing_file = g_strdup(node_filename(backing));
    }
    if (!flat) {
        BlockDriverState *b = filter_or_cow_bs(bs);

        while (b) {
            info->backing_file_depth++;
            b = filter_or_cow_bs(b);
        }
    }
    info->cache = g_new0(BlockdevCacheInfo, 1);
    info->cache->writeback = true;
    info->cache->direct = !!(flags & BDRV_O_NOCACHE);
    info->cache->no_flush = !!(flags & BDRV_O_NO_FLUSH);
    info->image = bdrv_image_info(bs, flat);
    return info;
}

BlockDeviceInfoList *qmp_query_named_block_nodes(bool has_flat, bool flat,
                                                 Error **errp)
{
    BlockDeviceInfoList *head = NULL, **tail = &head;
    BlockDriverState *bs = NULL;

    while ((bs = bdrv_next_node(bs))) {
        BlockDeviceInfoList *e = g_new0(BlockDeviceInfoList, 1);

        e->value = bdrv_block_device_info(bs, has_flat && flat);
        *tail = e;
        tail = &e->next;
    }
    return head;
}

/*
 * query-block lists devices (guest-visible drives).  A storage daemon
 * has none, so like qemu-storage-daemon the answer is always [].
 */
BlockInfoList *qmp_query_block(Error **errp)
{
    return NULL;
}
