/* stage.h - the local copy of a file being written, until it is uploaded.
 *
 * A stage holds a file's whole content. It lives in memory while small and
 * spills to an unlinked temporary file once it would grow beyond its memory
 * limit, so that many open files cost bounded memory and a big file costs
 * disk, not RAM. Spilling copies the memory content to the file once and
 * frees it; a stage never moves back to memory. Extending (a write past the
 * end, a truncate) reads back as zeros; on the file, extension by truncate
 * is sparse and allocates nothing.
 *
 * The temporary file is opened with O_TMPFILE in tmpdir (so no name ever
 * appears, and a crash leaves nothing behind), falling back to mkstemp and
 * an immediate unlink where the file system lacks O_TMPFILE.
 *
 * Not thread-safe: the owner (an open file's node) serialises every call
 * with its own lock, and keeps the stage unchanged while an upload reads
 * from a stage_body().
 *
 * Errors are negative errno values: the file system's own (-ENOSPC, -EIO,
 * -EFBIG from RLIMIT_FSIZE...) pass through unchanged; offsets or sizes
 * beyond what off_t holds give -EFBIG; a negative offset -EINVAL.
 */
#ifndef S3CFS_STAGE_H
#define S3CFS_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "s3cfs/s3.h"

#define STAGE_MEM_DEFAULT ((size_t)1 << 20)

struct stage;

/* An empty stage. tmpdir NULL means "/tmp"; it is copied. mem_limit is the
 * largest size kept in memory, 0 meaning STAGE_MEM_DEFAULT. No file is
 * created until the first spill, so a bad tmpdir shows up there. */
int stage_new(const char *tmpdir, size_t mem_limit, struct stage **out);
void stage_free(struct stage *s);

/* Write n bytes at off, extending the stage (with zeros over a hole).
 * Returns n or -errno; on error the size is unchanged (a failed write over
 * existing bytes may have replaced some of them). */
ssize_t stage_pwrite(struct stage *s, const void *buf, size_t n, off_t off);

/* Read up to n bytes at off: short at the end, 0 at or past it. */
ssize_t stage_pread(const struct stage *s, void *buf, size_t n, off_t off);

/* Shrink or extend (with zeros) to size. */
int stage_truncate(struct stage *s, uint64_t size);

uint64_t stage_size(const struct stage *s);

/* Describe bytes [off, off+len) as a request body: a pointer into memory
 * (fd -1) or the temporary file at an offset, read with pread so that a
 * retry can send it again. len is clipped to the stage's size. Valid until
 * the stage is next changed or freed. */
void stage_body(const struct stage *s, uint64_t off, uint64_t len, struct s3_body *out);

/* Whether the content lives in the temporary file (for tests and stats). */
bool stage_is_spilled(const struct stage *s);

/* Give back bytes [0, upto) of a spilled stage (-EINVAL in memory): they
 * were uploaded (a streamed upload, upstream.h) and are not needed here
 * any more, so their disk space is freed (a hole is punched; where the
 * file system cannot, the bytes stay, unread). The size is unchanged.
 * From then on reading or writing those bytes fails with -EIO, and so does
 * a truncate to a size in (0, upto); a truncate to 0 starts afresh. */
int stage_release(struct stage *s, uint64_t upto);
/* The end of what stage_release gave back (0: nothing). */
uint64_t stage_released(const struct stage *s);

#endif
