/*
 * blockd-img: shared declarations of the subcommands (tools/img-*.c) and
 * the helpers they use from tools/blockd-img.c's support file
 * tools/img-common.c.
 *
 * Every subcommand takes (argc, argv) with argv[0] the command name, parses
 * its own options with getopt_long like qemu-img, and returns the exit
 * status.  Errors go to stderr through error_report() ("blockd-img: ...").
 */
#ifndef TOOLS_BLOCKD_IMG_H
#define TOOLS_BLOCKD_IMG_H

#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include <jansson.h>

typedef enum ImgOutputFormat {
    IMG_OFORMAT_HUMAN,
    IMG_OFORMAT_JSON,
} ImgOutputFormat;

int img_cmd_create(int argc, char **argv);
int img_cmd_info(int argc, char **argv);
int img_cmd_check(int argc, char **argv);
int img_cmd_compare(int argc, char **argv);
int img_cmd_map(int argc, char **argv);
int img_cmd_convert(int argc, char **argv);
int img_cmd_resize(int argc, char **argv);
int img_cmd_dd(int argc, char **argv);
int img_cmd_commit(int argc, char **argv);
int img_cmd_rebase(int argc, char **argv);
int img_cmd_measure(int argc, char **argv);
int img_cmd_amend(int argc, char **argv);
int img_cmd_bench(int argc, char **argv);
int img_cmd_snapshot(int argc, char **argv);

/* img-common.c */

/*
 * --object and --image-opts, which the subcommands accept as qemu-img's
 * do: add IMG_COMMON_LONG_OPTIONS to the long options and pass
 * IMG_OPT_OBJECT / IMG_OPT_IMAGE_OPTS to img_common_option().
 */
enum {
    IMG_OPT_OBJECT = 0x100,
    IMG_OPT_IMAGE_OPTS,
};
#define IMG_COMMON_LONG_OPTIONS \
    { "object", required_argument, NULL, IMG_OPT_OBJECT }, \
    { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS }
/* false (error printed) for a bad --object */
bool img_common_option(int c, const char *arg);
/* --image-opts was given: img_open() takes option strings, not names */
extern bool img_image_opts;

/* The usage text (`blockd-img --help`, or any subcommand's -h) */
void img_help(void);

/* "Try 'blockd-img --help' ..." after an error line; returns 1 */
int img_usage_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* getopt returned '?' or ':' (option string starts with ':'); returns 1 */
int img_bad_option(int c, char **argv);
/* --output=human|json; false (error printed) on anything else */
bool img_parse_output(const char *arg, ImgOutputFormat *fmt);

/*
 * Open FILENAME like qemu-img: format fmt (NULL: probe), flags BDRV_O_*;
 * unless force_share, other users may not write (image locking).  On
 * failure prints "Could not open 'FILE': reason" and returns NULL.
 */
BlockBackend *img_open(const char *filename, const char *fmt, int flags,
                       bool force_share);
/* img_open() with driver options @opts (borrowed; NULL: none) */
BlockBackend *img_open_opts(const char *filename, const char *fmt,
                            json_t *opts, int flags, bool force_share);

/* qemu-img's JSON printer: 4-space indent, keys in QDict hash order */
void img_print_json(json_t *value);
/* jansson object with the keys of obj re-ordered as QEMU's QDict */
json_t *img_qdict_order(json_t *obj);

/* Backing file name made absolute relative to the image like QEMU */
char *img_full_backing_name(const char *image, const char *backing);

/*
 * The node in the backing chain of bs (not bs itself) that NAME refers
 * to: the backing file name as written in its parent, or the same file
 * (relative names also relative to the parent's directory).  *parent
 * gets the node whose backing file it is.  NULL if none.
 */
BlockDriverState *img_find_backing_image(BlockDriverState *bs,
                                         const char *name,
                                         BlockDriverState **parent);

/* Host bytes allocated for bs (qemu-img "disk size"), or -errno */
int64_t img_allocated_file_size(BlockDriverState *bs);

/* Parse a size argument as qemu-img (suffixes k/M/G/T/P/E) */
bool img_parse_size(const char *arg, int64_t *size);

/*
 * resize --preallocation for a raw image grown from @from to @to bytes:
 * "falloc" allocates the new area, "full" writes zeroes to it, as QEMU's
 * file driver does; other formats support only "off".
 */
int img_preallocate(BlockBackend *blk, int64_t from, int64_t to,
                    const char *mode, Error **errp);

/*
 * qemu-img's cvtnum_full(): a size argument NAME in [min, max], or
 * -errno after printing "Invalid NAME specified..."
 */
int64_t img_cvtnum_full(const char *name, const char *value, int64_t min,
                        int64_t max);

/* -t/-T cache mode into BDRV_O_NOCACHE/NO_FLUSH; -1 if unknown */
int img_parse_cache(const char *mode, int *flags);

/*
 * qemu-img's progress line for -p: "    (12.34/100%)\r" whenever the
 * percentage moved by more than min_skip since the last line (and at 0
 * and 100); a newline at the end.  Without enabled nothing is printed.
 * img_progress_add() advances by a delta.
 */
void img_progress_init(bool enabled, float min_skip);
void img_progress_print(float percent);
void img_progress_add(float delta);
void img_progress_end(void);

/*
 * -o ARG: append to options (comma separated) like qemu-img's
 * accumulate_options(); false (error printed) for an invalid list.
 */
bool img_accumulate_options(GString *options, const char *arg);
/* options contain "help" or "?" */
bool img_has_help_option(const char *options);

/* Run fn(opaque) in a coroutine and drive the main loop until it ends */
void img_run_co(CoroutineEntry *fn, void *opaque);

#endif /* TOOLS_BLOCKD_IMG_H */
