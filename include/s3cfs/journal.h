// clang-format off
/* journal.h - the intent journal: queued jobs survive a crash of the daemon.
 *
 * The job engine appends a record for every job before acknowledging it,
 * a record when a copy's metadata is folded, and a DONE record when the job
 * landed or failed for good. The DONE of a failed job is written in the
 * same write(2) as those of the jobs its failure cancels (jobs.h), so a
 * replay has a failed job and its dependants together or not at all: never
 * a move's delete without its copy. The next mount replays the jobs
 * without DONE, in their original order, and the engine runs them again: a
 * COPY is idempotent given its source ETag condition, a DELETE is.
 *
 * Durability: every record is one write(2) on an O_APPEND file, not
 * fsync'd: a daemon crash loses nothing (the page cache has it), power loss
 * is covered at durability points where the caller calls journal_sync().
 *
 * Format: one text line per record, fields separated by one space, strings
 * percent-encoded (every byte but A-Za-z0-9-_.~, so keys with spaces,
 * newlines, '%' or UTF-8 survive), NULL written as '*', and a final FNV-1a
 * checksum of the line in hex:
 *   C <id> <bucket> <key> <src_bucket> <src_key> <src_etag> <size> <ctype> <nmeta|*> [<name> <value>]...
 *                                            a COPY
 *   D <id> <bucket> <key> [<guard>]          a DELETE; guard: the id of the COPY whose failure
 *                                            cancels it (a move's source); absent: none, as
 *                                            written before guards existed
 *   M <id> <nmeta|*> [<name> <value>]...     new metadata of a COPY
 *   F <id>                                   finished
 * A torn last line (crash mid-write) or a line whose checksum is wrong is
 * ignored; journal_open cuts a torn tail so later appends start on a fresh
 * line.
 *
 * Size: journal_compact truncates the file when no job is live, and
 * rewrites it with only the live records (to a temporary file, fsync'd and
 * renamed over it) when it grew past the size limit; the limit then becomes
 * twice the size of the live records if that is more, so a large live set
 * is not rewritten on every call.
 *
 * Locking: one mutex per journal protects the file and the live set; each
 * call holds it for one write (or one rewrite in journal_compact). Nothing
 * else is called under it.
 */
// clang-format on
#ifndef S3CFS_JOURNAL_H
#define S3CFS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "s3cfs/jobs.h"

struct journal;

/* Open (creating it, mode 0600) and read the journal at path: the live
 * jobs are kept for journal_replay. -errno of open/read, or -ENOMEM. */
int journal_open(const char *path, struct journal **out);
/* The same reading on the len bytes at data instead of a file (tests and
 * fuzzing: tests/fuzz/fuzz_journal.c). Nothing is behind the journal: use
 * only journal_info, journal_replay and journal_close on it. */
int journal_open_memory(const char *data, size_t len, struct journal **out);
/* Close the file; records stay on disk. NULL is ignored. */
void journal_close(struct journal *j);

/* Rewrite above this many bytes (default 4 MiB, at least 4 KiB). */
void journal_set_max_size(struct journal *j, uint64_t bytes);

struct journal_info {
    uint64_t bytes;  /* size of the file */
    size_t live;     /* jobs recorded and not finished */
    uint64_t max_id; /* highest id ever seen; new ids must be above it */
};
void journal_info(struct journal *j, struct journal_info *out);

/* Hand every job read by journal_open and not finished, oldest first, to
 * cb (spec borrowed for the call), then forget them: a second call sees
 * none. A non-zero return of cb stops the replay and is returned; the jobs
 * not handed over stay in the file for the next mount. */
typedef int (*journal_replay_fn)(void *arg, uint64_t id, const struct job_spec *spec);
int journal_replay(struct journal *j, journal_replay_fn cb, void *arg);

/* Record job id (id > 0, not live). -EINVAL, -ENOMEM, or write's -errno
 * (the file is then cut back to what it was). */
int journal_append(struct journal *j, uint64_t id, const struct job_spec *spec);
/* Record new metadata (REPLACE) for live COPY id; meta NULL: directive COPY. */
int journal_fold_meta(struct journal *j, uint64_t id, const struct s3_meta *meta, size_t nmeta);
/* Record that these jobs finished, with one write. Ids not live are skipped. */
int journal_done(struct journal *j, const uint64_t *ids, size_t n);

/* fsync the file (without holding the mutex during the sync). */
int journal_sync(struct journal *j);
/* Truncate when nothing is live; rewrite with only the live records when
 * the file exceeds the size limit; otherwise nothing. */
int journal_compact(struct journal *j);

#endif
