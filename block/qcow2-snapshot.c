/*
 * qcow2 internal snapshots, read-only support: the snapshot table is
 * validated on open (so a corrupt table is a clear error) but never
 * modified.  The active image stays safe to write because every cluster a
 * snapshot shares has a refcount > 1 and no COPIED flag in the active
 * L1/L2 tables, so the write path copies it instead of overwriting it.
 *
 * Table entry layout (big endian): l1_table_offset u64, l1_size u32,
 * id_str_size u16, name_size u16, date_sec u32, date_nsec u32,
 * vm_clock_nsec u64, vm_state_size u32, extra_data_size u32, then the
 * extra data, the id string, the name, padded to 8 bytes.
 */
#include "qemu/osdep.h"
#include "block/qcow2.h"

#define SNAPSHOT_HEADER_SIZE 40
#define SNAPSHOT_TABLE_MAX (64 * MiB)

int coroutine_fn qcow2_read_snapshot_table(BlockDriverState *bs,
                                           Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t file_len = bdrv_getlength(bs->file->bs);
    uint64_t offset = s->snapshots_offset;
    uint8_t hdr[SNAPSHOT_HEADER_SIZE];
    uint32_t i;
    int ret;

    s->snapshots_size = 0;
    if (!s->nb_snapshots) {
        return 0;
    }
    if (file_len < 0) {
        error_setg_errno(errp, -file_len, "Could not get image file size");
        return file_len;
    }
    for (i = 0; i < s->nb_snapshots; i++) {
        uint64_t l1_offset, entry_size;
        uint32_t l1_size, extra;
        uint16_t id_len, name_len;

        if (offset + sizeof(hdr) > (uint64_t)file_len) {
            error_setg(errp, "Snapshot table is beyond the end of the image "
                       "file");
            return -EINVAL;
        }
        ret = bdrv_co_pread(bs->file, offset, sizeof(hdr), hdr, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to read snapshot table");
            return ret;
        }
        l1_offset = q2_ld64(hdr);
        l1_size = q2_ld32(hdr + 8);
        id_len = q2_ld16(hdr + 12);
        name_len = q2_ld16(hdr + 14);
        extra = q2_ld32(hdr + 36);
        if (extra > 1024) {
            error_setg(errp, "Too much extra metadata in snapshot table "
                       "entry %" PRIu32, i);
            return -EFBIG;
        }
        if (qcow2_offset_into_cluster(s, l1_offset) ||
            (uint64_t)l1_size * 8 > QCOW_MAX_L1_SIZE ||
            l1_offset + (uint64_t)l1_size * 8 > (uint64_t)file_len) {
            error_setg(errp, "Snapshot L1 table of snapshot %" PRIu32
                       " is invalid", i);
            return -EINVAL;
        }
        entry_size = QEMU_ALIGN_UP(sizeof(hdr) + extra + id_len + name_len,
                                   8);
        offset += entry_size;
        if (offset - s->snapshots_offset > SNAPSHOT_TABLE_MAX) {
            error_setg(errp, "Snapshot table too large");
            return -EFBIG;
        }
    }
    if (offset > (uint64_t)file_len) {
        error_setg(errp, "Snapshot table is beyond the end of the image "
                   "file");
        return -EINVAL;
    }
    s->snapshots_size = offset - s->snapshots_offset;
    return 0;
}
