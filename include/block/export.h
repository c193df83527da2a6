/*
 * Block exports: a node made available to the outside (NBD for now).
 *
 * The registry (block/export.c) owns the generic part: the id, the
 * BlockBackend on the exported node with the permissions the export
 * needs, a reference count, and the lifecycle:
 *
 *   blk_exp_add()          creates (user_owned, refcount 1)
 *   clients                blk_exp_ref()/blk_exp_unref() while connected
 *   block-export-del       mode=safe: refused while clients hold refs;
 *                          mode=hard: drv->request_shutdown() disconnects
 *                          them.  Either way the user's reference is
 *                          dropped and user_owned becomes false.
 *   refcount reaches 0     (in a BH) drv->delete(), the BlockBackend is
 *                          released, BLOCK_EXPORT_DELETED is emitted and
 *                          the export leaves the registry.
 *
 * An export that is shutting down stays in query-block-exports with
 * shutting-down=true until it is gone.
 */
#ifndef BLOCK_EXPORT_H
#define BLOCK_EXPORT_H

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/aio.h"
#include "block/block-backend.h"
#include "qapi-types.h"

typedef struct BlockExport BlockExport;

typedef struct BlockExportDriver {
    BlockExportType type;
    /* sizeof the driver's struct, whose first member is BlockExport */
    size_t instance_size;
    /*
     * Set up the driver's part; exp->blk is attached already.  On failure
     * return -errno with errp set; the registry then frees exp without
     * calling delete.
     */
    int (*create)(BlockExport *exp, BlockExportOptions *opts, Error **errp);
    /* Free the driver's resources (the last reference is gone). */
    void (*delete)(BlockExport *exp);
    /* Stop accepting clients and disconnect those connected. */
    void (*request_shutdown)(BlockExport *exp);
} BlockExportDriver;

struct BlockExport {
    const BlockExportDriver *drv;
    char *id;
    int refcount;
    /* true until block-export-del (or a shutdown) drops the user's ref */
    bool user_owned;
    BlockBackend *blk;
    AioContext *ctx;
    QEMUBH *delete_bh;
};

BlockExport *blk_exp_add(BlockExportOptions *export, Error **errp);
/* --export ARG (keyval with implied key "type", or JSON) */
bool blk_exp_add_cmdline(const char *arg, Error **errp);
BlockExport *blk_exp_find(const char *id);
void blk_exp_ref(BlockExport *exp);
void blk_exp_unref(BlockExport *exp);
/* Drop the user's reference, disconnecting clients (mode hard) */
void blk_exp_request_shutdown(BlockExport *exp);
/* Shut down every export (of a type) and wait until all are gone */
void blk_exp_close_all(void);
void blk_exp_close_all_type(BlockExportType type);
/* Exports in the registry (including those shutting down) */
unsigned blk_exp_count(void);

#endif /* BLOCK_EXPORT_H */
