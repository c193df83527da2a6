/*
 * Helpers behind the block-node QMP handlers (blockdev.c) that the daemon
 * also uses: --blockdev goes through the same path as blockdev-add.
 */
#ifndef BLOCK_BLOCKDEV_H
#define BLOCK_BLOCKDEV_H

#include "block/block.h"
#include "block/blockjob.h"
#include "qapi-types.h"

/*
 * blockdev-add: open the node described by @options (borrowed) and give
 * the monitor its reference.  QEMU's errors ("'node-name' must be
 * specified for the root node", "Duplicate nodes with node-name='x'"...).
 */
BlockDriverState *blockdev_add(BlockdevOptions *options, Error **errp);

/* BlockDeviceInfo for query-named-block-nodes (@flat: no backing chain) */
BlockDeviceInfo *bdrv_block_device_info(BlockDriverState *bs, bool flat);

/*
 * blockdev-backup / drive-backup without the start (blockdev-backup.c):
 * check the arguments, (drive-backup) create and open the target, and
 * create the backup job in state 'created' in txn (NULL: a transaction
 * of its own).  The caller starts it with job_start() or drops it with
 * job_cancel_sync(); transaction uses this to be all-or-nothing.
 * May change backup's sync (drive-backup: top without backing -> full).
 */
BlockJob *blockdev_backup_prepare(BlockdevBackup *backup, JobTxn *txn,
                                  Error **errp);
BlockJob *drive_backup_prepare(DriveBackup *backup, JobTxn *txn,
                               Error **errp);

#endif /* BLOCK_BLOCKDEV_H */
