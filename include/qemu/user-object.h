/*
 * --object OBJDEF for the tools (qemu-img, qemu-io style).  blockd has no
 * QOM; the only objects these tools are given are secrets (keys of
 * encrypted images, which blockd does not open).  A definition is checked
 * as QEMU checks it (known type, an id) and otherwise ignored.
 */
#ifndef QEMU_USER_OBJECT_H
#define QEMU_USER_OBJECT_H

#include "qemu/osdep.h"
#include "qapi/error.h"

/* Check "qom-type=T,id=ID,..." (or "T,id=ID,..."); false with *errp set */
bool user_object_check_cmdline(const char *def, Error **errp);

#endif /* QEMU_USER_OBJECT_H */
