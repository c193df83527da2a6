/*
 * Aligned allocations for I/O buffers (O_DIRECT needs buffers aligned to
 * the device's memory alignment, usually 512 or 4096 bytes).
 *
 * Memory from these functions must be released with qemu_vfree(), never
 * g_free().
 */
#ifndef QEMU_MEMALIGN_H
#define QEMU_MEMALIGN_H

#include "qemu/osdep.h"

/* Default alignment for block I/O buffers when the caller has none. */
#define QEMU_DEFAULT_IO_ALIGN 4096

/*
 * Allocate @size bytes aligned to @alignment (a power of two; values below
 * sizeof(void *) are raised to it).  size 0 still returns a valid, unique
 * pointer.  Returns NULL on failure.
 */
void *qemu_try_memalign(size_t alignment, size_t size);
/* As qemu_try_memalign(), but aborts on failure. */
void *qemu_memalign(size_t alignment, size_t size);
/* Free memory from the allocators above; NULL is ignored. */
void qemu_vfree(void *ptr);

/*
 * I/O bounce buffer: @size bytes aligned to @align (0 means
 * QEMU_DEFAULT_IO_ALIGN), with the size rounded up to a multiple of the
 * alignment so that whole-buffer O_DIRECT transfers stay in bounds.
 * The _try_ variant returns NULL on failure; the other aborts.
 */
void *qemu_try_blockalign_buf(size_t align, size_t size);
void *qemu_blockalign_buf(size_t align, size_t size);
/* Same, zero-filled. */
void *qemu_try_blockalign0_buf(size_t align, size_t size);

#endif /* QEMU_MEMALIGN_H */
