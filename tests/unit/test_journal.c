/* Unit tests for the intent journal: records with hostile keys survive a
 * round trip, DONE hides a record, replay keeps submission order, a torn or
 * garbled line is ignored, compaction keeps the file small; and with the job
 * engine: records are on disk before engine_submit returns (also when the
 * daemon is SIGKILLed), and a replay resubmits, drains and empties the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3cfs/engine.h"
#include "s3cfs/htab.h"
#include "s3cfs/journal.h"
#include "s3cfs/pool.h"

extern char **environ;

static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "watchdog: a journal test hung (30 s)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

static char dir[64];
static char path[128];

/* A fresh journal path per test, and a 30 s watchdog. */
static int setup(void **state)
{
    (void)state;
    signal(SIGALRM, on_watchdog);
    alarm(30);
    snprintf(dir, sizeof dir, "/tmp/s3cfs-journal-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/journal", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    snprintf(tmp, sizeof tmp, "%s.lock", path);
    unlink(tmp);
    unlink(path);
    rmdir(dir);
    alarm(0);
    return 0;
}

static uint64_t file_size(void)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : UINT64_MAX;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---------- replay into an array of deep copies ---------- */

struct rec {
    uint64_t id;
    enum job_kind kind;
    char *bucket, *key, *src_bucket, *src_key, *src_etag, *content_type, *seen_etag;
    uint64_t src_size, guard;
    int64_t queued_s;
    bool has_meta;
    size_t nmeta;
    char *names[8], *values[8];
};

struct recs {
    struct rec r[512];
    size_t n;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int collect(void *arg, uint64_t id, const struct job_spec *s)
{
    struct recs *rs = arg;
    if (rs->n == 512)
        return -ENOSPC;
    struct rec *r = &rs->r[rs->n++];
    *r = (struct rec){.id = id,
                      .kind = s->kind,
                      .bucket = strdup(s->bucket),
                      .key = strdup(s->key),
                      .src_bucket = dup_or_null(s->src_bucket),
                      .src_key = dup_or_null(s->src_key),
                      .src_etag = dup_or_null(s->src_etag),
                      .content_type = dup_or_null(s->content_type),
                      .seen_etag = dup_or_null(s->seen_etag),
                      .src_size = s->src_size,
                      .guard = s->guard,
                      .queued_s = s->queued_s,
                      .has_meta = s->meta != NULL,
                      .nmeta = s->nmeta};
    for (size_t i = 0; i < s->nmeta && i < 8; i++) {
        r->names[i] = strdup(s->meta[i].name);
        r->values[i] = strdup(s->meta[i].value);
    }
    return 0;
}

static void recs_free(struct recs *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        struct rec *r = &rs->r[i];
        free(r->bucket);
        free(r->key);
        free(r->src_bucket);
        free(r->src_key);
        free(r->src_etag);
        free(r->content_type);
        free(r->seen_etag);
        for (size_t k = 0; k < r->nmeta && k < 8; k++) {
            free(r->names[k]);
            free(r->values[k]);
        }
    }
    rs->n = 0;
}

/* The file's bytes (at most 64 KiB), NUL-terminated; *len their count. */
static char *slurp(const char *p, size_t *len)
{
    char *buf = calloc(1, 65537);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    *len = fread(buf, 1, 65536, f);
    fclose(f);
    return buf;
}

/* What a replay of the file would run, read while a handle holds it (its
 * lock forbids a second handle). */
static void reopen_replay(struct recs *rs)
{
    size_t len;
    char *data = slurp(path, &len);
    struct journal *j;
    assert_int_equal(journal_open_memory(data, len, &j), 0);
    assert_int_equal(journal_replay(j, collect, rs), 0);
    journal_close(j);
    free(data);
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (!want)
        assert_null(got);
    else
        assert_string_equal(got, want);
}

static void assert_rec(const struct rec *r, uint64_t id, const struct job_spec *s)
{
    assert_int_equal(r->id, id);
    assert_int_equal(r->kind, s->kind);
    assert_string_equal(r->bucket, s->bucket);
    assert_string_equal(r->key, s->key);
    assert_str_or_null(r->src_bucket, s->src_bucket);
    assert_str_or_null(r->src_key, s->src_key);
    assert_str_or_null(r->src_etag, s->src_etag);
    assert_str_or_null(r->content_type, s->content_type);
    assert_int_equal(r->src_size, s->src_size);
    assert_int_equal(r->guard, s->guard);
    assert_int_equal(r->has_meta, s->meta != NULL);
    assert_int_equal(r->nmeta, s->nmeta);
    for (size_t i = 0; i < s->nmeta; i++) {
        assert_string_equal(r->names[i], s->meta[i].name);
        assert_string_equal(r->values[i], s->meta[i].value);
    }
}

static struct job_spec del_spec(const char *key)
{
    return (struct job_spec){.kind = JOB_DELETE, .bucket = "bkt", .key = key};
}

static struct job_spec copy_spec(const char *src, const char *dst)
{
    return (struct job_spec){.kind = JOB_COPY,
                             .bucket = "bkt",
                             .key = dst,
                             .src_bucket = "bkt",
                             .src_key = src,
                             .src_etag = "0123456789abcdef0123456789abcdef",
                             .src_size = 42};
}

/* ---------- records ---------- */

static void test_round_trip_nasty_keys(void **state)
{
    (void)state;
    static char longkey[1025], allbytes[256];
    for (int i = 0; i < 1024; i++)
        longkey[i] = (char)('a' + i % 26);
    longkey[1024] = '\0';
    for (int i = 1; i < 256; i++)
        allbytes[i - 1] = (char)i;
    allbytes[255] = '\0';
    const struct s3_meta meta[] = {{"mode", "33188"}, {"xattr", "%7B\"a b\":\"\n*\"%7D"}};
    const struct s3_meta nometa[1] = {{NULL, NULL}};
    struct job_spec specs[] = {
        {.kind = JOB_COPY,
         .bucket = "my.bucket",
         .key = "dir with space/new\nline/100%/*star*",
         .src_bucket = "other-bucket",
         .src_key = "ünïcødé/日本語/ファイル.txt",
         .src_etag = "\"quoted\"-3",
         .src_size = UINT64_MAX,
         .meta = meta,
         .nmeta = 2,
         .content_type = "text/plain; charset=utf-8"},
        {.kind = JOB_COPY,
         .bucket = "b",
         .key = longkey,
         .src_bucket = "b",
         .src_key = allbytes,
         .src_etag = NULL,
         .src_size = 0},
        {.kind = JOB_COPY, /* REPLACE with no metadata at all: not the same as COPY */
         .bucket = "b",
         .key = "+plus+ and ~tilde~",
         .src_bucket = "b",
         .src_key = " leading and trailing ",
         .src_etag = "",
         .meta = nometa,
         .nmeta = 0},
        {.kind = JOB_DELETE, .bucket = "b", .key = "a/"},
        {.kind = JOB_DELETE, .bucket = "b", .key = "\t\r\n"},
    };
    size_t n = sizeof specs / sizeof specs[0];
    struct journal *j;
    assert_int_equal(journal_open(path, &j), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(journal_append(j, 10 + i, &specs[i]), 0);
    assert_int_equal(journal_append(j, 10, &specs[0]), -EINVAL); /* already live */
    journal_close(j);

    struct recs *rs = calloc(1, sizeof *rs);
    reopen_replay(rs);
    assert_int_equal(rs->n, n);
    for (size_t i = 0; i < n; i++)
        assert_rec(&rs->r[i], 10 + i, &specs[i]);
    recs_free(rs);
    free(rs);

    /* the file is text: one line per record */
    FILE *f = fopen(path, "r");
    int lines = 0, c;
    while ((c = fgetc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    assert_int_equal(lines, (int)n);
}

static void test_done_hides_and_order(void **state)
{
    (void)state;
    struct journal *j;
    assert_int_equal(journal_open(path, &j), 0);
    /* records need not reach the file in id order (the engine writes them
     * after its lock is released): a replay runs them by id, which is the
     * order they were queued in */
    const uint64_t ids[] = {5, 7, 9, 4, 3};
    char keys[5][8];
    for (int i = 0; i < 5; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        struct job_spec s = i % 2 ? del_spec(keys[i]) : copy_spec("src", keys[i]);
        assert_int_equal(journal_append(j, ids[i], &s), 0);
    }
    const uint64_t done[] = {9, 5, 1000 /* unknown: harmless */};
    assert_int_equal(journal_done(j, done, 3), 0);
    struct journal_info ji;
    journal_info(j, &ji);
    assert_int_equal(ji.live, 3);
    assert_int_equal(ji.max_id, 9);
    journal_close(j);

    struct recs *rs = calloc(1, sizeof *rs);
    reopen_replay(rs);
    assert_int_equal(rs->n, 3);
    assert_int_equal(rs->r[0].id, 3);
    assert_string_equal(rs->r[0].key, "k4");
    assert_int_equal(rs->r[0].kind, JOB_COPY);
    assert_int_equal(rs->r[1].id, 4);
    assert_string_equal(rs->r[1].key, "k3");
    assert_int_equal(rs->r[2].id, 7);
    assert_string_equal(rs->r[2].key, "k1");
    assert_int_equal(rs->r[2].kind, JOB_DELETE);
    recs_free(rs);

    /* replay hands the jobs over once */
    assert_int_equal(journal_open(path, &j), 0);
    assert_int_equal(journal_replay(j, collect, rs), 0);
    assert_int_equal(rs->n, 3);
    recs_free(rs);
    assert_int_equal(journal_replay(j, collect, rs), 0);
    assert_int_equal(rs->n, 0);
    journal_info(j, &ji);
    assert_int_equal(ji.live, 3); /* still live until DONE */
    assert_int_equal(ji.max_id, 9);
    journal_close(j);
    free(rs);
}

static void test_fold_meta_record(void **state)
{
    (void)state;
    struct journal *j;
    assert_int_equal(journal_open(path, &j), 0);
    struct job_spec s = copy_spec("a", "b");
    assert_int_equal(journal_append(j, 1, &s), 0);
    const struct s3_meta m1[] = {{"mode", "33261"}}, m2[] = {{"mode", "33188"}, {"uid", "7"}};
    assert_int_equal(journal_fold_meta(j, 1, m1, 1), 0);
    assert_int_equal(journal_fold_meta(j, 1, m2, 2), 0); /* the last one wins */
    assert_int_equal(journal_fold_meta(j, 2, m1, 1), -ENOENT);
    journal_close(j);
    struct recs *rs = calloc(1, sizeof *rs);
    reopen_replay(rs);
    assert_int_equal(rs->n, 1);
    s.meta = m2;
    s.nmeta = 2;
    assert_rec(&rs->r[0], 1, &s);
    recs_free(rs);
    free(rs);
}

static void append_raw(const char *text)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Append body as a record line with its checksum (FNV-1a, as journal.c). */
static void append_record(const char *body)
{
    char line[256];
    snprintf(line, sizeof line, "%s %08x\n", body, (unsigned)hash_fnv1a32(body, strlen(body)));
    append_raw(line);
}

/* A move's delete keeps the id of its copy; a DELETE written without one
 * (as before guards existed) still replays, unguarded; a bad guard is a bad
 * record. */
static void test_guard_record(void **state)
{
    (void)state;
    struct journal *j;
    assert_int_equal(journal_open(path, &j), 0);
    struct job_spec c = copy_spec("a", "b"), d = del_spec("a"), plain = del_spec("x");
    d.guard = 7;
    assert_int_equal(journal_append(j, 7, &c), 0);
    assert_int_equal(journal_append(j, 8, &d), 0);
    assert_int_equal(journal_append(j, 9, &plain), 0);
    journal_close(j);
    append_record("D 10 bkt old");    /* the old grammar */
    append_record("D 11 bkt zero 0"); /* no job has id 0 */
    append_record("D 12 bkt word x");
    struct recs *rs = calloc(1, sizeof *rs);
    reopen_replay(rs);
    assert_int_equal(rs->n, 4);
    assert_rec(&rs->r[0], 7, &c);
    assert_rec(&rs->r[1], 8, &d);
    assert_rec(&rs->r[2], 9, &plain);
    struct job_spec old = del_spec("old");
    assert_rec(&rs->r[3], 10, &old);
    recs_free(rs);
    free(rs);
}

static void test_torn_and_garbled_lines(void **state)
{
    (void)state;
    struct journal *j;
    assert_int_equal(journal_open(path, &j), 0);
    struct job_spec a = copy_spec("a", "b"), b = del_spec("x"), c = del_spec("y");
    assert_int_equal(journal_append(j, 1, &a), 0);
    journal_close(j);
    append_raw("D 2 bkt x 00000000\n"); /* a wrong checksum: skipped */
    uint64_t good = file_size();
    append_raw("C 3 bkt half-writ"); /* the crash came mid-write */

    struct recs *rs = calloc(1, sizeof *rs);
    assert_int_equal(journal_open(path, &j), 0);
    assert_int_equal(file_size(), good); /* the torn tail is cut */
    assert_int_equal(journal_append(j, 4, &b), 0);
    assert_int_equal(journal_append(j, 5, &c), 0);
    assert_int_equal(journal_replay(j, collect, rs), 0);
    journal_close(j);
    assert_int_equal(rs->n, 1);
    assert_rec(&rs->r[0], 1, &a);
    recs_free(rs);

    reopen_replay(rs); /* later appends start on a line of their own */
    assert_int_equal(rs->n, 3);
    assert_rec(&rs->r[1], 4, &b);
    assert_rec(&rs->r[2], 5, &c);
    recs_free(rs);
    free(rs);
}

static void test_compaction(void **state)
{
    (void)state;
    struct journal *j;
    assert_int_equal(journal_open(path, &j), 0);
    journal_set_max_size(j, 4096);
    char key[64];
    uint64_t biggest = 0;
    /* a stream of jobs where 1 in 50 never finishes */
    for (uint64_t id = 1; id <= 2000; id++) {
        snprintf(key, sizeof key, "some/longish/directory/name/file-%06llu",
                 (unsigned long long)id);
        struct job_spec s = copy_spec("src/object", key);
        assert_int_equal(journal_append(j, id, &s), 0);
        if (id % 50 != 0)
            assert_int_equal(journal_done(j, &id, 1), 0);
        assert_int_equal(journal_compact(j), 0);
        uint64_t size = file_size();
        biggest = size > biggest ? size : biggest;
    }
    /* 40 live records of ~150 bytes plus at most 4 KiB of finished ones */
    assert_true(biggest < 4 * 4096);
    journal_close(j);

    struct recs *rs = calloc(1, sizeof *rs);
    reopen_replay(rs);
    assert_int_equal(rs->n, 40);
    for (size_t i = 0; i < rs->n; i++)
        assert_int_equal(rs->r[i].id, 50 * (i + 1));
    recs_free(rs);
    free(rs);

    /* nothing live: truncated */
    assert_int_equal(journal_open(path, &j), 0);
    for (uint64_t id = 50; id <= 2000; id += 50)
        assert_int_equal(journal_done(j, &id, 1), 0);
    assert_true(file_size() > 0);
    assert_int_equal(journal_compact(j), 0);
    assert_int_equal(file_size(), 0);
    assert_int_equal(journal_sync(j), 0);
    journal_close(j);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct journal *j = NULL;
    assert_int_equal(journal_open("/nonexistent-dir/journal", &j), -ENOENT);
    assert_null(j);
    journal_close(NULL);
}

/* ---------- who may have put the file there (issue 13 §1) ---------- */

static char victim[160];

/* A file outside the journal's directory that a planted link points to. */
static void make_victim(void)
{
    snprintf(victim, sizeof victim, "%s.victim", dir);
    FILE *f = fopen(victim, "w");
    assert_non_null(f);
    fputs("precious, without a final newline", f);
    fclose(f);
}

static void assert_victim_intact(void)
{
    size_t len;
    char *data = slurp(victim, &len);
    assert_string_equal(data, "precious, without a final newline");
    free(data);
    unlink(victim);
}

/* A symlink planted at the journal's name is not followed: the daemon
 * would have cut the "torn" tail of whatever it points to. */
static void test_refuses_planted_symlink(void **state)
{
    (void)state;
    make_victim();
    assert_int_equal(symlink(victim, path), 0);
    struct journal *j = NULL;
    assert_int_equal(journal_open(path, &j), -ELOOP);
    assert_null(j);
    assert_victim_intact();
}

/* A hard link to another file, or something that is not a regular file. */
static void test_refuses_hard_link_and_fifo(void **state)
{
    (void)state;
    make_victim();
    assert_int_equal(link(victim, path), 0);
    struct journal *j = NULL;
    assert_int_equal(journal_open(path, &j), -EPERM);
    unlink(path);
    assert_victim_intact();
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(journal_open(path, &j), -EPERM);
    assert_null(j);
}

/* A directory others can write to, or that another user owns. */
static void test_refuses_shared_directory(void **state)
{
    (void)state;
    struct journal *j = NULL;
    assert_int_equal(chmod(dir, 01777), 0);
    assert_int_equal(journal_open(path, &j), -EPERM);
    assert_int_equal(chmod(dir, 0720), 0);
    assert_int_equal(journal_open(path, &j), -EPERM);
    assert_int_equal(chmod(dir, 0700), 0);
    if (geteuid() == 0) { /* only root can give the directory away */
        assert_int_equal(chown(dir, 1, 1), 0);
        assert_int_equal(journal_open(path, &j), -EPERM);
        assert_int_equal(chown(dir, 0, 0), 0);
    }
    assert_null(j);
    assert_int_equal(access(path, F_OK), -1); /* nothing was created */
    assert_int_equal(journal_open(path, &j), 0);
    journal_close(j);
}

/* The rewrite's temporary file is created, never opened through a link
 * planted at its name (it would have truncated the link's target). */
static void test_rewrite_ignores_planted_tmp(void **state)
{
    (void)state;
    make_victim();
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(symlink(victim, tmp), 0);
    struct journal *j;
    assert_int_equal(journal_open(path, &j), 0);
    journal_set_max_size(j, 4096);
    struct job_spec s = copy_spec("a", "live");
    assert_int_equal(journal_append(j, 1, &s), 0);
    for (uint64_t id = 2; id < 100; id++) {
        struct job_spec d = del_spec("gone");
        assert_int_equal(journal_append(j, id, &d), 0);
        assert_int_equal(journal_done(j, &id, 1), 0);
    }
    assert_true(file_size() > 4096);
    assert_int_equal(journal_compact(j), 0); /* rewritten: only the live record */
    assert_true(file_size() < 512);
    journal_close(j);
    assert_victim_intact();
    struct recs *rs = calloc(1, sizeof *rs);
    reopen_replay(rs);
    assert_int_equal(rs->n, 1);
    assert_string_equal(rs->r[0].key, "live");
    recs_free(rs);
    free(rs);
}

static struct journal *closer_j;

static void *close_later(void *arg)
{
    (void)arg;
    sleep_ms(200);
    journal_close(closer_j);
    return NULL;
}

/* One handle per journal: another one is refused, or waits for the
 * holder to close (a previous daemon finishing its queue). */
static void test_exclusive_lock(void **state)
{
    (void)state;
    struct journal *j, *k = NULL;
    assert_int_equal(journal_open(path, &j), 0);
    struct job_spec s = copy_spec("a", "b");
    assert_int_equal(journal_append(j, 1, &s), 0);
    assert_int_equal(journal_open(path, &k), -EBUSY);
    struct journal_opts o = {.lock_wait_ms = 300};
    assert_int_equal(journal_open_opts(path, &o, &k), -EBUSY); /* waited, still held */
    assert_null(k);
    closer_j = j;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, close_later, NULL), 0);
    o.lock_wait_ms = 5000;
    assert_int_equal(journal_open_opts(path, &o, &k), 0); /* once it closed */
    pthread_join(t, NULL);
    struct journal_info ji;
    journal_info(k, &ji);
    assert_int_equal(ji.live, 1);
    journal_close(k);
}

/* The jobs of one source are never replayed by a mount of another. */
static void test_source_recorded_and_checked(void **state)
{
    (void)state;
    const char *a = "endpoint=http://127.0.0.1:1 bucket=b prefix= mountpoint=/mnt/x";
    const char *b = "endpoint=http://127.0.0.1:1 bucket=other prefix= mountpoint=/mnt/x";
    struct journal_opts oa = {.source = a}, ob = {.source = b};
    struct journal *j = NULL;
    assert_int_equal(journal_open_opts(path, &oa, &j), 0);
    struct job_spec s = del_spec("k");
    assert_int_equal(journal_append(j, 7, &s), 0);
    journal_close(j);
    uint64_t size = file_size();
    j = NULL;
    assert_int_equal(journal_open_opts(path, &ob, &j), -EXDEV);
    assert_null(j);
    assert_int_equal(file_size(), size); /* left as it was */
    /* a journal without a source record (or a planted one) and live jobs */
    struct journal_opts none = {0};
    assert_int_equal(journal_open_opts(path, &none, &j), 0);
    struct recs *rs = calloc(1, sizeof *rs);
    assert_int_equal(journal_replay(j, collect, rs), 0);
    assert_int_equal(rs->n, 1);
    recs_free(rs);
    journal_close(j);
    assert_int_equal(journal_open_opts(path, &oa, &j), 0); /* its own source */
    uint64_t id = 7;
    assert_int_equal(journal_done(j, &id, 1), 0);
    assert_int_equal(journal_compact(j), 0);
    assert_true(file_size() > 0); /* truncated to the source record */
    journal_close(j);
    /* nothing live: another source takes the file over */
    assert_int_equal(journal_open_opts(path, &ob, &j), 0);
    assert_int_equal(journal_append(j, 8, &s), 0);
    journal_close(j);
    assert_int_equal(journal_open_opts(path, &oa, &j), -EXDEV);
    unlink(path);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    append_record("C 1 bkt planted src x * 1 * *"); /* no source record */
    assert_int_equal(journal_open_opts(path, &oa, &j), -EXDEV);
    free(rs);
}

/* A DELETE records when it was queued and the ETag its object was known
 * by, so that a replay spares an object written after it; records of the
 * older formats still load. */
static void test_delete_time_recorded(void **state)
{
    (void)state;
    struct journal *j;
    assert_int_equal(journal_open(path, &j), 0);
    struct job_spec d = del_spec("k");
    int64_t before = (int64_t)time(NULL);
    assert_int_equal(journal_append(j, 1, &d), 0);
    d.queued_s = 12345;
    d.guard = 9;
    d.seen_etag = "0123abcd-2";
    assert_int_equal(journal_append(j, 2, &d), 0);
    journal_close(j);
    append_record("D 3 bkt old");
    append_record("D 4 bkt older 1");
    append_record("D 5 bkt bad 1 0");
    append_record("D 6 bkt timed 0 777");
    append_record("D 7 bkt toolong 0 777 * x");
    struct recs *rs = calloc(1, sizeof *rs);
    reopen_replay(rs);
    assert_int_equal(rs->n, 5);
    assert_true(rs->r[0].queued_s >= before && rs->r[0].queued_s <= before + 5);
    assert_int_equal(rs->r[0].guard, 0);
    assert_null(rs->r[0].seen_etag);
    assert_int_equal(rs->r[1].queued_s, 12345);
    assert_int_equal(rs->r[1].guard, 9);
    assert_string_equal(rs->r[1].seen_etag, "0123abcd-2");
    assert_int_equal(rs->r[2].queued_s, 0);
    assert_int_equal(rs->r[3].guard, 1);
    assert_int_equal(rs->r[3].queued_s, 0);
    assert_int_equal(rs->r[4].queued_s, 777);
    assert_null(rs->r[4].seen_etag);
    recs_free(rs);
    free(rs);
}

/* journal_sync fsyncs what was written since the last one, and only then. */
static void test_sync_counts(void **state)
{
    (void)state;
    struct journal *j;
    assert_int_equal(journal_open(path, &j), 0);
    uint64_t w, s;
    struct job_spec d = del_spec("k");
    assert_int_equal(journal_append(j, 1, &d), 0);
    journal_sync_count(j, &w, &s);
    assert_int_equal(w, 1);
    assert_int_equal(s, 0);
    assert_int_equal(journal_sync(j), 0);
    journal_sync_count(j, &w, &s);
    assert_int_equal(s, w);
    journal_close(j);
}

/* ---------- with the engine ---------- */

/* A fake executor that records the order it runs jobs in; it blocks while
 * the gate is shut. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    bool gate_shut;
    char order[64][32];
    int n;
} X = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, {{0}}, 0};

static void x_record(const char *kind, const char *key)
{
    pthread_mutex_lock(&X.lock);
    while (X.gate_shut)
        pthread_cond_wait(&X.cv, &X.lock);
    if (X.n < 64)
        snprintf(X.order[X.n++], sizeof X.order[0], "%s %s", kind, key);
    pthread_mutex_unlock(&X.lock);
}

static int x_exec(void *ctx, uint64_t id, const struct job_spec *s, struct s3_error *err)
{
    (void)ctx;
    (void)id;
    x_record("copy", s->key);
    if (strncmp(s->key, "bad", 3) == 0) {
        s3_error_set(err, "AccessDenied", "Access Denied");
        err->http_status = 403;
        return -EACCES;
    }
    return 0;
}

static int x_del(void *ctx, const char *bucket, const char *const *keys, const char *const *etags,
                 size_t n, int *rcs, struct s3_error *err)
{
    (void)ctx;
    (void)etags;
    (void)bucket;
    (void)rcs;
    (void)err;
    for (size_t i = 0; i < n; i++)
        x_record("delete", keys[i]);
    return 0;
}

static void x_gate(bool shut)
{
    pthread_mutex_lock(&X.lock);
    X.gate_shut = shut;
    if (!shut)
        pthread_cond_broadcast(&X.cv);
    pthread_mutex_unlock(&X.lock);
}

static struct engine *x_engine(struct pool **p, struct journal *j)
{
    X.n = 0;
    assert_int_equal(pool_new(4, 16, p), 0);
    struct engine_config cfg = {.pool = *p, .exec = x_exec, .del = x_del, .journal = j};
    struct engine *e;
    assert_int_equal(engine_new(&cfg, &e), 0);
    return e;
}

/* A fresh journal at path and an engine on it, the executor's gate open
 * or shut. */
static struct engine *fsq_on_journal(struct journal **j, struct pool **p, bool gate_shut)
{
    assert_int_equal(journal_open(path, j), 0);
    x_gate(gate_shut);
    return x_engine(p, *j);
}

/* cp a b; cp b c; rm a; rm x: submitted while the executor is blocked. */
static void submit_four(struct engine *e)
{
    struct job_spec s[] = {copy_spec("a", "b"), copy_spec("b", "c"), del_spec("a"), del_spec("x")};
    for (int i = 0; i < 4; i++)
        assert_int_equal(engine_submit(e, &s[i], NULL), 0);
}

static void assert_four(const struct recs *rs)
{
    assert_int_equal(rs->n, 4);
    assert_string_equal(rs->r[0].key, "b");
    assert_string_equal(rs->r[1].key, "c");
    assert_string_equal(rs->r[1].src_key, "b");
    assert_int_equal(rs->r[2].kind, JOB_DELETE);
    assert_string_equal(rs->r[2].key, "a");
    assert_string_equal(rs->r[3].key, "x");
    for (size_t i = 1; i < 4; i++)
        assert_true(rs->r[i].id > rs->r[i - 1].id);
}

static void test_engine_journals_before_ack(void **state)
{
    (void)state;
    struct journal *j;
    struct pool *p;
    assert_int_equal(journal_open(path, &j), 0);
    x_gate(true);
    struct engine *e = x_engine(&p, j);
    submit_four(e);
    /* read back by another handle while nothing has finished */
    struct recs *rs = calloc(1, sizeof *rs);
    reopen_replay(rs);
    assert_four(rs);
    recs_free(rs);
    x_gate(false);
    assert_int_equal(engine_drain(e), 0);
    engine_free(e);
    pool_free(p);
    assert_int_equal(X.n, 4);
    assert_int_equal(file_size(), 0); /* idle: compacted */
    journal_close(j);
    free(rs);
}

/* Where the executor ran this, or 99. */
static int pos(const char *what)
{
    for (int i = 0; i < X.n; i++)
        if (strcmp(X.order[i], what) == 0)
            return i;
    return 99;
}

/* The daemon: submits four jobs (mode "four") or a move and a delete
 * (mode "move") with the executor blocked forever, says so on stdout, and
 * waits to be killed. */
static int crash_child(const char *jpath, const char *mode)
{
    struct journal *j;
    struct pool *p;
    if (journal_open(jpath, &j) != 0)
        return 1;
    x_gate(true);
    X.n = 0;
    if (pool_new(4, 16, &p) != 0)
        return 1;
    struct engine_config cfg = {.pool = p, .exec = x_exec, .del = x_del, .journal = j};
    struct engine *e;
    if (engine_new(&cfg, &e) != 0)
        return 1;
    struct job_spec s[] = {copy_spec("a", "b"), copy_spec("b", "c"), del_spec("a"), del_spec("x")};
    struct job_spec mv = copy_spec("a", "bad");
    bool move = strcmp(mode, "move") == 0;
    if (move && engine_submit_move(e, &mv, 0, NULL, NULL) != 0)
        return 1;
    for (int i = move ? 3 : 0; i < 4; i++)
        if (engine_submit(e, &s[i], NULL) != 0)
            return 1;
    if (write(1, "ready\n", 6) != 6)
        return 1;
    for (;;)
        pause();
}

/* Run crash_child(mode) in a child process and SIGKILL it once it is ready. */
static void kill_crash_child(const char *mode)
{
    int out[2];
    assert_int_equal(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *argv[] = {"test_journal", "--crash-child", path, (char *)mode, NULL};
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    char buf[8] = {0};
    assert_int_equal(read(out[0], buf, 6), 6);
    close(out[0]);
    assert_string_equal(buf, "ready\n");
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
}

static void test_sigkill_then_replay(void **state)
{
    (void)state;
    kill_crash_child("four");

    /* the next mount: the four jobs come back and run in their order */
    struct journal *j;
    struct pool *p;
    assert_int_equal(journal_open(path, &j), 0);
    struct journal_info ji;
    journal_info(j, &ji);
    assert_int_equal(ji.live, 4);
    x_gate(false);
    struct engine *e = x_engine(&p, j);
    size_t count = 0;
    assert_int_equal(engine_recover(e, &count), 0);
    assert_int_equal(count, 4);
    uint64_t id;
    struct job_spec after = del_spec("later");
    assert_int_equal(engine_submit(e, &after, &id), 0);
    assert_true(id > ji.max_id); /* new ids continue after the journal's */
    assert_int_equal(engine_drain(e), 0);
    engine_free(e);
    pool_free(p);
    assert_int_equal(X.n, 5);
    /* independent deletes may go first; the dependants keep their order */
    assert_true(pos("copy b") < pos("copy c"));
    assert_true(pos("copy b") < pos("delete a"));
    assert_true(pos("delete x") < 5);
    journal_info(j, &ji);
    assert_int_equal(ji.live, 0);
    assert_int_equal(file_size(), 0); /* replayed, drained, compacted */
    journal_close(j);
    struct recs *rs = calloc(1, sizeof *rs);
    reopen_replay(rs);
    assert_int_equal(rs->n, 0);
    free(rs);
}

static void test_replay_keeps_folded_meta(void **state)
{
    (void)state;
    struct journal *j;
    struct pool *p;
    struct engine *e = fsq_on_journal(&j, &p, true);
    struct job_spec s1 = copy_spec("a", "b"), s2 = copy_spec("b", "c");
    assert_int_equal(engine_submit(e, &s1, NULL), 0);
    assert_int_equal(engine_submit(e, &s2, NULL), 0);
    const struct s3_meta m[] = {{"mode", "33261"}};
    sleep_ms(50); /* b is running (blocked), c waits for it */
    assert_int_equal(engine_fold_meta(e, "bkt", "c", m, 1), 0);
    struct recs *rs = calloc(1, sizeof *rs);
    reopen_replay(rs);
    assert_int_equal(rs->n, 2);
    assert_true(rs->r[1].has_meta);
    assert_int_equal(rs->r[1].nmeta, 1);
    assert_string_equal(rs->r[1].values[0], "33261");
    recs_free(rs);
    free(rs);
    x_gate(false);
    engine_free(e);
    pool_free(p);
    journal_close(j);
}

/* A failed copy's DONE is written with the DONE of the delete its failure
 * cancels (mv a bad), in one write: a replay after that has neither, one
 * before it has both, so it never runs the delete alone. */
static void test_failed_copy_done_with_its_dependants(void **state)
{
    (void)state;
    struct journal *j;
    struct pool *p;
    assert_int_equal(journal_open(path, &j), 0);
    x_gate(false);
    struct engine *e = x_engine(&p, j);
    struct job_spec held = del_spec("zzz"), c = copy_spec("a", "bad");
    uint64_t g = engine_new_group(e);
    held.hold = g; /* stays pending until released */
    assert_int_equal(engine_submit(e, &held, NULL), 0);
    assert_int_equal(engine_submit_move(e, &c, 0, NULL, NULL), 0);
    assert_int_equal(engine_wait_key(e, "bkt", "a", ENGINE_AS_DEST | ENGINE_AS_SOURCE), -EACCES);
    struct recs *rs = calloc(1, sizeof *rs);
    reopen_replay(rs);
    assert_int_equal(rs->n, 1); /* only zzz: the move is over, failed */
    assert_string_equal(rs->r[0].key, "zzz");
    recs_free(rs);
    assert_int_equal(pos("delete zzz"), 99); /* held */
    engine_release(e, g);
    assert_int_equal(engine_drain(e), -EACCES); /* bad's own failure */
    assert_int_equal(pos("delete a"), 99);      /* never ran */
    assert_true(pos("delete zzz") < 99);
    engine_free(e);
    pool_free(p);
    reopen_replay(rs);
    assert_int_equal(rs->n, 0);
    recs_free(rs);
    free(rs);
    journal_close(j);
}

/* The daemon killed with a move queued: the next mount replays the copy and
 * the delete guarded by it; the copy fails, so the delete never runs. */
static void test_sigkill_then_replay_move(void **state)
{
    (void)state;
    kill_crash_child("move");
    struct recs *rs = calloc(1, sizeof *rs);
    reopen_replay(rs);
    assert_int_equal(rs->n, 3);
    assert_string_equal(rs->r[0].key, "bad");
    assert_int_equal(rs->r[1].kind, JOB_DELETE);
    assert_string_equal(rs->r[1].key, "a");
    assert_int_equal(rs->r[1].guard, rs->r[0].id);
    assert_int_equal(rs->r[2].guard, 0);
    recs_free(rs);
    free(rs);
    struct journal *j;
    struct pool *p;
    assert_int_equal(journal_open(path, &j), 0);
    x_gate(false);
    struct engine *e = x_engine(&p, j);
    size_t count = 0;
    assert_int_equal(engine_recover(e, &count), 0);
    assert_int_equal(count, 3);
    assert_int_equal(engine_drain(e), -EACCES);
    engine_free(e);
    pool_free(p);
    assert_true(pos("copy bad") < 99);
    assert_int_equal(pos("delete a"), 99); /* the source of the failed copy is kept */
    assert_true(pos("delete x") < 99);
    assert_int_equal(file_size(), 0);
    journal_close(j);
}

static struct engine *slow_e;

static void *submit_slowly(void *arg)
{
    (void)arg;
    struct job_spec s = copy_spec("a", "slow");
    assert_int_equal(engine_submit(slow_e, &s, NULL), 0);
    return NULL;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A slow journal stalls the submitter only: the engine's lock is not held
 * while a record is written, so every other caller goes on. */
static void test_no_journal_write_under_engine_lock(void **state)
{
    (void)state;
    struct journal *j;
    struct pool *p;
    slow_e = fsq_on_journal(&j, &p, false);
    journal_test_writes(j, 1500, 0);
    pthread_t t;
    int64_t t0 = mono_ms();
    assert_int_equal(pthread_create(&t, NULL, submit_slowly, NULL), 0);
    sleep_ms(200); /* the submitter is in its write */
    struct engine_status st;
    engine_status(slow_e, &st);
    int64_t took = mono_ms() - t0;
    assert_int_equal(st.pending, 1); /* queued, not started before its record is written */
    assert_int_equal(st.running, 0);
    assert_true(took < 1000);
    assert_false(engine_pending_key(slow_e, "bkt", "other", ENGINE_AS_DEST));
    pthread_join(t, NULL);
    assert_true(mono_ms() - t0 >= 1400);
    journal_test_writes(j, 0, 0);
    assert_int_equal(engine_drain(slow_e), 0);
    assert_true(pos("copy slow") < 99);
    engine_free(slow_e);
    pool_free(p);
    journal_close(j);
}

/* A job whose record cannot be written fails its submission and never
 * runs (a move: neither its copy nor its delete); it is not reported a
 * second time. */
static void test_unrecorded_job_never_runs(void **state)
{
    (void)state;
    struct journal *j;
    struct pool *p;
    struct engine *e = fsq_on_journal(&j, &p, false);
    journal_test_writes(j, 0, -ENOSPC);
    struct job_spec c = copy_spec("a", "b"), d = del_spec("x"), m = copy_spec("m", "n");
    assert_int_equal(engine_submit(e, &c, NULL), -ENOSPC);
    assert_int_equal(engine_submit(e, &d, NULL), -ENOSPC);
    assert_int_equal(engine_submit_move(e, &m, 0, NULL, NULL), -ENOSPC);
    journal_test_writes(j, 0, 0);
    struct job_spec ok = del_spec("y");
    assert_int_equal(engine_submit(e, &ok, NULL), 0);
    assert_int_equal(engine_drain(e), 0);
    assert_int_equal(X.n, 1);
    assert_int_equal(pos("delete y"), 0);
    engine_free(e);
    pool_free(p);
    struct journal_info ji;
    journal_info(j, &ji);
    assert_int_equal(ji.live, 0);
    journal_close(j);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--crash-child") == 0)
        return crash_child(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_nasty_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_hides_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_copy_done_with_its_dependants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guard_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_then_replay_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fold_meta_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_and_garbled_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_planted_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_hard_link_and_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_shared_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrite_ignores_planted_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exclusive_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_recorded_and_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_time_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_journals_before_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_then_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_keeps_folded_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_journal_write_under_engine_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unrecorded_job_never_runs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
