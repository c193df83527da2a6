/*
 * Helpers behind the block-node QMP handlers (blockdev.c) that the daemon
 * also uses: --blockdev goes through the same path as blockdev-add.
 */
#ifndef BLOCK_BLOCKDEV_H
#define BLOCK_BLOCKDEV_H

#include "block/block.h"
#include "qapi-types.h"

/*
 * blockdev-add: open the node described by @options (borrowed) and give
 * the monitor its reference.  QEMU's errors ("'node-name' must be
 * specified for the root node", "Duplicate nodes with node-name='x'"...).
 */
BlockDriverState *blockdev_add(BlockdevOptions *options, Error **errp);

/* BlockDeviceInfo for query-named-block-nodes (@flat: no backing chain) */
BlockDeviceInfo *bdrv_block_device_info(BlockDriverState *bs, bool flat);

#endif /* BLOCK_BLOCKDEV_H */
