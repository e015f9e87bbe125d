/* journal.h - the intent journal: queued jobs survive a crash of the daemon.
 *
 * The job engine appends a record for every job before acknowledging it,
 * a record when a copy's metadata is folded, and a DONE record when the job
 * landed or failed for good. The DONE of a failed job is written in the
 * same write(2) as those of the jobs its failure cancels (engine.h), so a
 * replay has a failed job and its dependants together or not at all: never
 * a move's delete without its copy. The next mount replays the jobs
 * without DONE in the order of their ids (the order they were queued in;
 * the engine writes records outside its lock, so they may reach the file
 * in another order), and the engine runs them again: a COPY is idempotent
 * given its source ETag condition; a DELETE runs only on an object older
 * than the second it was queued in, or of that second with the ETag the
 * mount knew it by (fsqueue.c), so it never removes what was written after
 * it.
 *
 * Trust: the journal tells a daemon, often root's, what to copy and
 * delete, so nobody else may write it. journal_open refuses a directory
 * not owned by the daemon's user or writable by its group or others, opens
 * the file and its lock without following a symlink and refuses one that
 * is not a regular file of that user with a single link, and reads that
 * same descriptor; a rewrite creates its temporary file O_EXCL|O_NOFOLLOW.
 * The first line records the source (endpoint, bucket, prefix, mount
 * point): live jobs of another source are refused, not replayed. The
 * engine checks every replayed key like user input (engine.h admit).
 *
 * One daemon per journal: journal_open takes an exclusive flock on
 * PATH.lock (holding the pid, for the messages) until journal_close, after
 * the final compaction. A second daemon waits up to lock_wait_ms with a
 * message (a systemd restart or a quick remount while the previous daemon
 * drains), then refuses (-EBUSY): it would replay the first one's live jobs
 * again, and the first one's compaction would cut its records.
 *
 * Durability: every record is one write(2) on an O_APPEND file, not
 * fsync'd per record: a daemon crash loses nothing (the page cache has
 * it). journal_sync makes everything written so far survive a power loss;
 * the engine calls it at its durability points (fsq_durable: fsync of a
 * file or a directory, s3cfs-ctl wait, unmount), after their wait, so the
 * DONE of what landed is on disk before the call returns.
 *
 * Format: one text line per record, fields separated by one space, strings
 * percent-encoded (every byte but A-Za-z0-9-_.~, so keys with spaces,
 * newlines, '%' or UTF-8 survive), NULL written as '*', and a final FNV-1a
 * checksum of the line in hex:
 */
// clang-format off
/*
 *   S 0 <source>                             the mount's source; only as the first line
 *   C <id> <bucket> <key> <src_bucket> <src_key> <src_etag> <size> <ctype> <nmeta|*> [<name> <value>]...
 *                                            a COPY
 *   D <id> <bucket> <key> <guard|0> <queued> <etag|*>
 *                                            a DELETE; guard: the id of the COPY whose failure
 *                                            cancels it (a move's source), 0: none; queued:
 *                                            when it was queued (Unix seconds); etag: the one
 *                                            the mount knew the object by, *: unknown. Also read:
 *   D <id> <bucket> <key> <guard|0> <queued> as written before the ETag (unknown)
 *   D <id> <bucket> <key> [<guard>]          as written before delete times (no time: a
 *                                            replay deletes whatever is there)
 *   M <id> <nmeta|*> [<name> <value>]...     new metadata of a COPY
 *   F <id>                                   finished
 */
// clang-format on
/* A torn last line (crash mid-write) or a line whose checksum is wrong is
 * ignored; journal_open cuts a torn tail so later appends start on a fresh
 * line.
 *
 * Size: journal_compact truncates the file to its S record when no job is
 * live, and rewrites it with only the live records (to a temporary file,
 * fsync'd and renamed over it) when it grew past the size limit; the limit
 * then becomes twice the size of the live records if that is more, so a
 * large live set is not rewritten on every call.
 *
 * Locking: one mutex per journal protects the file and the live set; each
 * call holds it for one write (or one rewrite in journal_compact, or to
 * take a descriptor for journal_sync's fsync, made without it). Nothing
 * else is called under it. The job engine never calls a writing function
 * with its own lock held (engine.c), so a slow disk stalls the submitter of
 * a job, not every filesystem operation.
 */
#ifndef S3CFS_JOURNAL_H
#define S3CFS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "s3cfs/engine.h"

struct journal;

struct journal_opts {
    /* The mount's source (endpoint, bucket, prefix, mount point) as one
     * string, recorded in the file's first line (S). A file holding live
     * jobs of another source, or of none, is refused (-EXDEV, nothing
     * replayed); one with no live job starts again with this source.
     * NULL: no S record, nothing checked (tests). */
    const char *source;
    /* How long to wait for another holder of the journal's lock (a
     * previous daemon still draining) before -EBUSY; 0: do not wait. */
    int lock_wait_ms;
};

/* Open (creating it, mode 0600) and read the journal at path: the live
 * jobs are kept for journal_replay. The directory must be the daemon's
 * user's and not writable by group or others, the file (and PATH.lock) a
 * regular file of that user with one link, opened without following a
 * symlink: else -EPERM or -ELOOP, logged. The lock is held until
 * journal_close. -errno of open/read, -EBUSY, -EXDEV, or -ENOMEM. */
int journal_open_opts(const char *path, const struct journal_opts *opts, struct journal **out);
/* journal_open_opts with opts NULL. */
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

/* fsync the file (without holding the mutex during the sync); nothing
 * when nothing was written since the last one. */
int journal_sync(struct journal *j);
/* Records written (and cuts) so far, and how many of them were fsync'd. */
void journal_sync_count(struct journal *j, uint64_t *writes, uint64_t *synced);
/* Truncate when nothing is live; rewrite with only the live records when
 * the file exceeds the size limit; otherwise nothing. */
int journal_compact(struct journal *j);

/* Tests: every later write sleeps delay_ms first (a slow disk, under the
 * journal's mutex), then fails with fail_rc if it is not 0. */
void journal_test_writes(struct journal *j, int delay_ms, int fail_rc);

#endif
