/* mime.h - the Content-Type of a new object from its name, as s3fs-fuse
 * chooses it: the extension looked up in /etc/mime.types.
 *
 * The table is read once at mount (mime_load) and is read-only after, so
 * lookups need no lock. It is bounded: a file over MIME_FILE_MAX bytes is
 * read up to that size, at most MIME_ENTRIES_MAX extensions are kept, and
 * lines, types and extensions longer than the limits are skipped. A
 * missing or unreadable file gives an empty table (a warning): objects are
 * then uploaded without a Content-Type, as with -o nomime.
 */
#ifndef S3CFS_MIME_H
#define S3CFS_MIME_H

#include <stddef.h>

#define MIME_FILE_MAX    (1 << 20)
#define MIME_ENTRIES_MAX 16384
#define MIME_TYPE_MAX    127 /* s3 transfer's content_type[128] */
#define MIME_EXT_MAX     32

struct mime_table;

/* Read path (mime.types format: "type ext ext ...", '#' comments). *out is
 * never NULL on 0; -ENOMEM only. A file that cannot be read is an empty
 * table (logged). */
int mime_load(const char *path, struct mime_table **out);
void mime_free(struct mime_table *t);
/* How many extensions the table holds. */
size_t mime_count(const struct mime_table *t);

/* The type for the last component of path into out (size bytes): by its
 * last extension, else the one before it ("a.txt.bak" -> text/plain when
 * "bak" is unknown), compared without case; "" when none matches, for a
 * dot file without another dot (".bashrc"), or when t is NULL. */
void mime_type(const struct mime_table *t, const char *path, char *out, size_t size);

#endif
