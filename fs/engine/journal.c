/* journal.c - the intent journal (see journal.h for the contract).
 *
 * In memory the journal keeps only the set of live ids (a hash map on
 * util/htab), so its size follows the number of pending jobs, not the length of
 * the file. The records themselves are read back from the file twice only:
 * at open (to rebuild the live set and the jobs to replay) and when a
 * rewrite copies the live lines to a new file.
 */
#include "s3cfs/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "s3cfs/buf.h"
#include "s3cfs/htab.h"
#include "s3cfs/log.h"
#include "s3cfs/uri.h"

#define DEFAULT_MAX_SIZE (4u << 20)
#define MIN_MAX_SIZE     4096u
#define NULL_FIELD       "*" /* never produced by the encoding, which escapes '*' */

/* ---------- a map from job id (never 0) to a pointer ---------- */

/* On util/htab, one small entry per live id; zeroed, it is an empty map
 * whose buckets come with the first id. */
struct idmap {
    struct htab t;
};

struct identry {
    struct htab_node hn; /* first: a node is its entry */
    uint64_t id;
    void *val;
};

static bool id_eq(const struct htab_node *n, const void *key, size_t len)
{
    (void)len;
    return ((const struct identry *)n)->id == *(const uint64_t *)key;
}

static uint32_t id_hash(uint64_t id)
{
    return hash_fnv1a32(&id, sizeof id);
}

/* The value's slot, or NULL when id is absent. */
static void **idmap_get(const struct idmap *m, uint64_t id)
{
    if (!m->t.b)
        return NULL;
    struct identry *e = (struct identry *)htab_find(&m->t, id_hash(id), &id, sizeof id);
    return e ? &e->val : NULL;
}

/* Insert or overwrite. */
static int idmap_put(struct idmap *m, uint64_t id, void *val)
{
    void **slot = idmap_get(m, id);
    if (slot) {
        *slot = val;
        return 0;
    }
    if (!m->t.b && htab_init(&m->t, 64, id_eq) != 0)
        return -ENOMEM;
    struct identry *e = malloc(sizeof *e);
    if (!e)
        return -ENOMEM;
    *e = (struct identry){.id = id, .val = val};
    htab_insert(&m->t, &e->hn, id_hash(id));
    return 0;
}

static void idmap_del(struct idmap *m, uint64_t id)
{
    struct identry *e =
        m->t.b ? (struct identry *)htab_find(&m->t, id_hash(id), &id, sizeof id) : NULL;
    if (!e)
        return;
    htab_remove(&m->t, &e->hn);
    free(e);
}

static size_t idmap_count(const struct idmap *m)
{
    return m->t.n;
}

static bool free_entry(struct htab_node *n, void *arg)
{
    (void)arg;
    free(n);
    return true;
}

static void idmap_free(struct idmap *m)
{
    if (m->t.b) {
        htab_filter(&m->t, free_entry, NULL);
        htab_free(&m->t);
    }
    *m = (struct idmap){0};
}

/* ---------- the journal ---------- */

/* A live job read at open, waiting for journal_replay. */
struct jrec {
    struct jrec *prev, *next; /* file order */
    uint64_t id;
    struct job_spec spec; /* strings point into data, meta into meta_data */
    char *data;
    char *meta_data;
    struct s3_meta *meta;
};

struct journal {
    pthread_mutex_t lock;
    char *path;               /* constant */
    char *dir;                /* constant: the directory's path */
    char *name;               /* constant: the file's name (in path) */
    char *file_source;        /* the S record read at open, or NULL */
    int dirfd;                /* constant: the checked directory */
    int lockfd;               /* constant: holds the exclusive lock, or -1 */
    char *header;             /* constant: the S record, or NULL (no source) */
    size_t header_len;        /* constant */
    int fd;                   /* lock: O_APPEND */
    uint64_t writes, synced;  /* lock: records written, and written when last fsync'd */
    int test_delay_ms;        /* lock: journal_test_writes */
    int test_fail_rc;         /* lock */
    uint64_t size;            /* lock: bytes in the file (all complete lines) */
    uint64_t max_size;        /* lock: configured limit */
    uint64_t limit;           /* lock: rewrite above this (>= max_size) */
    uint64_t max_id;          /* lock */
    struct idmap live;        /* lock: live ids -> their struct jrec until replayed, else NULL */
    struct jrec *head, *tail; /* lock: records to replay */
};

/* FNV-1a: catches torn or garbled lines; not a defence against malice. */
static uint32_t line_sum(const char *s, size_t n)
{
    return hash_fnv1a32(s, n);
}

/* ---------- writing records ---------- */

static int put_field(struct sbuf *b, const char *s)
{
    int rc = sbuf_append_char(b, ' ');
    if (rc == 0)
        rc = s ? uri_encode_str(b, s, false) : sbuf_append_str(b, NULL_FIELD);
    return rc;
}

static int put_meta(struct sbuf *b, const struct s3_meta *meta, size_t n)
{
    if (!meta)
        return put_field(b, NULL);
    int rc = sbuf_appendf(b, " %zu", n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = put_field(b, meta[i].name);
        if (rc == 0)
            rc = put_field(b, meta[i].value);
    }
    return rc;
}

/* Append the checksum of the line so far and the newline. */
static int put_end(struct sbuf *b, size_t line_start)
{
    uint32_t sum = line_sum(b->data + line_start, b->len - line_start);
    return sbuf_appendf(b, " %08" PRIx32 "\n", sum);
}

static int put_job(struct sbuf *b, uint64_t id, const struct job_spec *s)
{
    bool copy = s->kind == JOB_COPY;
    int rc = sbuf_appendf(b, "%c %" PRIu64, copy ? 'C' : 'D', id);
    if (rc == 0)
        rc = put_field(b, s->bucket);
    if (rc == 0)
        rc = put_field(b, s->key);
    if (rc == 0 && copy) {
        const char *f[] = {s->src_bucket, s->src_key, s->src_etag};
        for (size_t i = 0; rc == 0 && i < 3; i++)
            rc = put_field(b, f[i]);
        if (rc == 0)
            rc = sbuf_appendf(b, " %" PRIu64, s->src_size);
        if (rc == 0)
            rc = put_field(b, s->content_type);
        if (rc == 0)
            rc = put_meta(b, s->meta, s->nmeta);
    }
    if (rc == 0 && !copy) { /* a replay keeps a delete off newer objects by its time */
        int64_t when = s->queued_s > 0 ? s->queued_s : (int64_t)time(NULL);
        rc = sbuf_appendf(b, " %" PRIu64 " %" PRId64, s->guard, when);
        if (rc == 0)
            rc = put_field(b, s->seen_etag && *s->seen_etag ? s->seen_etag : NULL);
    }
    return rc ? rc : put_end(b, 0);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One write(2) in the normal case; a short write continues, a failed one
 * cuts the file back so no partial line stays in front of later records. */
/* All n bytes of p at fd's offset: 0, or -errno (-EIO if nothing could be
 * written). */
static int write_whole(int fd, const char *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        done += (size_t)w;
    }
    return 0;
}

static int write_locked(struct journal *j, const char *p, size_t n)
{
    if (j->test_delay_ms > 0)
        sleep_ms(j->test_delay_ms);
    if (j->test_fail_rc)
        return j->test_fail_rc;
    int rc = write_whole(j->fd, p, n);
    if (rc != 0) { /* a torn line is cut, so the next line starts clean */
        if (ftruncate(j->fd, (off_t)j->size) != 0)
            LOGW("journal %s: cannot cut a failed write: %s", j->path, strerror(errno));
        LOGE("journal %s: write: %s", j->path, strerror(-rc));
        return rc;
    }
    j->size += n;
    j->writes++;
    return 0;
}

int journal_append(struct journal *j, uint64_t id, const struct job_spec *spec)
{
    if (id == 0 || !spec->bucket || !spec->key)
        return -EINVAL;
    struct sbuf b = SBUF_INIT;
    int rc = put_job(&b, id, spec);
    pthread_mutex_lock(&j->lock);
    if (rc == 0 && idmap_get(&j->live, id))
        rc = -EINVAL;
    if (rc == 0)
        rc = idmap_put(&j->live, id, NULL);
    if (rc == 0) {
        rc = write_locked(j, b.data, b.len);
        if (rc)
            idmap_del(&j->live, id);
    }
    if (rc == 0 && id > j->max_id)
        j->max_id = id;
    pthread_mutex_unlock(&j->lock);
    sbuf_free(&b);
    return rc;
}

int journal_fold_meta(struct journal *j, uint64_t id, const struct s3_meta *meta, size_t nmeta)
{
    struct sbuf b = SBUF_INIT;
    int rc = sbuf_appendf(&b, "M %" PRIu64, id);
    if (rc == 0)
        rc = put_meta(&b, meta, nmeta);
    if (rc == 0)
        rc = put_end(&b, 0);
    pthread_mutex_lock(&j->lock);
    if (rc == 0)
        rc = idmap_get(&j->live, id) ? write_locked(j, b.data, b.len) : -ENOENT;
    pthread_mutex_unlock(&j->lock);
    sbuf_free(&b);
    return rc;
}

int journal_done(struct journal *j, const uint64_t *ids, size_t n)
{
    struct sbuf b = SBUF_INIT;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t start = b.len;
        rc = sbuf_appendf(&b, "F %" PRIu64, ids[i]);
        if (rc == 0)
            rc = put_end(&b, start);
    }
    pthread_mutex_lock(&j->lock);
    if (rc == 0 && b.len > 0)
        rc = write_locked(j, b.data, b.len);
    /* forgotten even when the write failed: the jobs are over either way,
     * and a live set that never empties would stop the file's truncation */
    for (size_t i = 0; i < n; i++)
        idmap_del(&j->live, ids[i]);
    pthread_mutex_unlock(&j->lock);
    sbuf_free(&b);
    return rc;
}

/* ---------- reading records ---------- */

/* A record split into its type, id and decoded fields. */
struct parsed {
    char type;
    uint64_t id;
    struct sbuf buf; /* the decoded fields, each NUL-terminated */
    size_t *off;     /* field offsets into buf; SIZE_MAX for NULL */
    size_t n, cap;
};

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A job id field: a number above 0. */
static int parse_id(const char *s, uint64_t *out)
{
    return s && parse_u64(s, strlen(s), out) == 0 && *out != 0 ? 0 : -EINVAL;
}

/* Check the checksum and read "<type> <id>". *body_end gets the length of
 * the line without its checksum, *fields where the fields begin. */
static int line_head(const char *line, size_t len, char *type, uint64_t *id, size_t *fields,
                     size_t *body_end)
{
    if (len < 12 /* "F 1 " and the sum */ || line[1] != ' ' || line[len - 9] != ' ')
        return -EINVAL;
    size_t end = len - 9;
    char hex[9];
    memcpy(hex, line + end + 1, 8);
    hex[8] = '\0';
    char *stop;
    unsigned long sum = strtoul(hex, &stop, 16);
    if (*stop != '\0' || (uint32_t)sum != line_sum(line, end))
        return -EINVAL;
    const char *sp = memchr(line + 2, ' ', end - 2);
    size_t id_end = sp ? (size_t)(sp - line) : end;
    *type = line[0];
    *body_end = end;
    *fields = id_end;
    /* no job has id 0 (the engine's ids start at 1; a record with it
     * would be replayed as a job that never was); only the S record,
     * about no job, has it */
    int rc = parse_u64(line + 2, id_end - 2, id);
    return rc == 0 && (*id == 0) != (line[0] == 'S') ? -EINVAL : rc;
}

static int parsed_add(struct parsed *p, const char *s, size_t n)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        size_t *off = realloc(p->off, cap * sizeof *off);
        if (!off)
            return -ENOMEM;
        p->off = off;
        p->cap = cap;
    }
    if (n == 1 && s[0] == NULL_FIELD[0]) {
        p->off[p->n++] = SIZE_MAX;
        return 0;
    }
    p->off[p->n] = p->buf.len;
    int rc = uri_decode(&p->buf, s, n, false);
    if (rc == 0)
        rc = sbuf_append_char(&p->buf, '\0');
    p->n += rc == 0;
    return rc;
}

static int parse_line(const char *line, size_t len, struct parsed *p)
{
    size_t at, end;
    int rc = line_head(line, len, &p->type, &p->id, &at, &end);
    while (rc == 0 && at < end) {
        const char *s = line + at + 1; /* past the separating space */
        const char *sp = memchr(s, ' ', (size_t)(line + end - s));
        size_t n = sp ? (size_t)(sp - s) : (size_t)(line + end - s);
        rc = parsed_add(p, s, n);
        at += 1 + n;
    }
    return rc;
}

static void parsed_free(struct parsed *p)
{
    sbuf_free(&p->buf);
    free(p->off);
}

/* Field i as a string (NULL for '*'), base being the decoded buffer. */
static const char *field(const struct parsed *p, const char *base, size_t i)
{
    return p->off[i] == SIZE_MAX ? NULL : base + p->off[i];
}

/* Fields [first, p->n) as "<nmeta|*> [<name> <value>]..." into *meta. */
static int parse_meta(const struct parsed *p, const char *base, size_t first, struct s3_meta **meta,
                      size_t *nmeta)
{
    *meta = NULL;
    *nmeta = 0;
    const char *count = first < p->n ? field(p, base, first) : "";
    if (!count)
        return first + 1 == p->n ? 0 : -EINVAL;
    uint64_t n;
    size_t pairs = p->n - first - 1;
    if (parse_u64(count, strlen(count), &n) != 0 || pairs % 2 != 0 || n != pairs / 2)
        return -EINVAL;
    *meta = calloc(n ? n : 1, sizeof **meta); /* non-NULL even for n == 0: REPLACE */
    if (!*meta)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        (*meta)[i].name = field(p, base, first + 1 + 2 * i);
        (*meta)[i].value = field(p, base, first + 2 + 2 * i);
        if (!(*meta)[i].name || !(*meta)[i].value) {
            free(*meta);
            *meta = NULL;
            return -EINVAL;
        }
    }
    *nmeta = n;
    return 0;
}

/* A DELETE's optional fields: "[<guard>]" (before delete times were
 * recorded; the guard above 0), "<guard|0> <queued>" (before the ETag seen
 * was recorded) or "<guard|0> <queued> <etag|*>". */
static int parse_delete_tail(const struct parsed *p, const char *b, struct job_spec *s)
{
    if (p->n == 3)
        return parse_id(field(p, b, 2), &s->guard);
    if (p->n == 2)
        return 0;
    const char *g = field(p, b, 2), *t = field(p, b, 3);
    uint64_t when;
    if (!g || !t || parse_u64(g, strlen(g), &s->guard) != 0 ||
        parse_u64(t, strlen(t), &when) != 0 || when == 0 || when > INT64_MAX)
        return -EINVAL;
    s->queued_s = (int64_t)when;
    s->seen_etag = p->n == 5 ? field(p, b, 4) : NULL; /* '*': NULL */
    return 0;
}

static void jrec_free(struct jrec *r)
{
    free(r->data);
    free(r->meta_data);
    free(r->meta);
    free(r);
}

/* Fill r->spec from a C or D record, taking p's decoded fields. */
static int jrec_fill(struct jrec *r, struct parsed *p)
{
    struct job_spec *s = &r->spec;
    bool copy = p->type == 'C';
    if (copy ? p->n < 8 : p->n < 2 || p->n > 5)
        return -EINVAL;
    r->data = sbuf_detach(&p->buf);
    if (!r->data)
        return -ENOMEM;
    const char *b = r->data;
    s->kind = copy ? JOB_COPY : JOB_DELETE;
    s->bucket = field(p, b, 0);
    s->key = field(p, b, 1);
    if (!s->bucket || !s->key)
        return -EINVAL;
    if (!copy)
        return parse_delete_tail(p, b, s);
    s->src_bucket = field(p, b, 2);
    s->src_key = field(p, b, 3);
    s->src_etag = field(p, b, 4);
    s->content_type = field(p, b, 6);
    const char *size = field(p, b, 5);
    if (!s->src_bucket || !s->src_key || !size || parse_u64(size, strlen(size), &s->src_size))
        return -EINVAL;
    int rc = parse_meta(p, b, 7, &r->meta, &s->nmeta);
    s->meta = r->meta;
    return rc;
}

/* An M record: the metadata of r becomes p's. */
static int jrec_set_meta(struct jrec *r, struct parsed *p)
{
    if (!p->buf.data && sbuf_append_char(&p->buf, '\0') != 0) /* "M id *": no fields decoded */
        return -ENOMEM;
    struct s3_meta *meta;
    size_t n;
    int rc = parse_meta(p, p->buf.data, 0, &meta, &n);
    if (rc)
        return rc;
    free(r->meta);
    free(r->meta_data);
    r->meta_data = sbuf_detach(&p->buf);
    r->meta = meta;
    r->spec.meta = meta;
    r->spec.nmeta = n;
    return 0;
}

static void list_unlink(struct journal *j, struct jrec *r)
{
    *(r->prev ? &r->prev->next : &j->head) = r->next;
    *(r->next ? &r->next->prev : &j->tail) = r->prev;
}

/* Insert r in id order: a replay runs jobs in the order they were queued,
 * which is their ids' order whatever order their records reached the file
 * (engine.c writes a record after the engine lock is released). */
static void list_insert(struct journal *j, struct jrec *r)
{
    struct jrec *after = j->tail;
    while (after && after->id > r->id)
        after = after->prev;
    r->prev = after;
    r->next = after ? after->next : j->head;
    *(r->next ? &r->next->prev : &j->tail) = r;
    *(after ? &after->next : &j->head) = r;
}

static int load_job(struct journal *j, struct parsed *p)
{
    if (idmap_get(&j->live, p->id))
        return -EEXIST;
    struct jrec *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->id = p->id;
    int rc = jrec_fill(r, p);
    if (rc == 0)
        rc = idmap_put(&j->live, r->id, r);
    if (rc) {
        jrec_free(r);
        return rc;
    }
    list_insert(j, r);
    return 0;
}

/* The S record, only as the first line: the source the jobs belong to. */
static int load_source(struct journal *j, struct parsed *p, bool first)
{
    if (!first || p->id != 0 || p->n != 1 || p->off[0] == SIZE_MAX || j->file_source)
        return -EINVAL;
    j->file_source = strdup(p->buf.data + p->off[0]);
    return j->file_source ? 0 : -ENOMEM;
}

/* Apply one complete line read at open. */
static int load_line(struct journal *j, const char *line, size_t len, bool first)
{
    struct parsed p = {0};
    int rc = parse_line(line, len, &p);
    if (rc == 0 && p.type == 'S') {
        rc = load_source(j, &p, first);
        parsed_free(&p);
        return rc;
    }
    if (rc == 0 && (p.type == 'C' || p.type == 'D') && p.id > j->max_id)
        j->max_id = p.id;
    void **slot = rc == 0 ? idmap_get(&j->live, p.id) : NULL;
    if (rc == 0 && (p.type == 'C' || p.type == 'D'))
        rc = load_job(j, &p);
    else if (rc == 0 && p.type == 'M')
        rc = slot ? jrec_set_meta(*slot, &p) : 0;
    else if (rc == 0 && p.type == 'F' && slot) {
        struct jrec *r = *slot;
        idmap_del(&j->live, p.id);
        list_unlink(j, r);
        jrec_free(r);
    } else if (rc == 0 && p.type != 'F')
        rc = -EINVAL;
    parsed_free(&p);
    return rc;
}

/* Apply every complete line of data; *good gets the length of the complete
 * part (a torn last line is not counted). Only -ENOMEM fails: a bad record
 * is skipped. */
static int load_buffer(struct journal *j, const char *data, size_t len, uint64_t *good)
{
    *good = 0;
    while (*good < len) {
        const char *line = data + *good;
        const char *nl = memchr(line, '\n', len - *good);
        if (!nl)
            break; /* torn: the crash came mid-write */
        size_t n = (size_t)(nl - line);
        int rc = load_line(j, line, n, *good == 0);
        if (rc == -ENOMEM)
            return rc;
        if (rc)
            LOGW("journal %s: skipping a bad record at byte %" PRIu64, j->path, *good);
        *good += n + 1;
    }
    return 0;
}

/* The whole file, read through fd (the descriptor that was checked, never
 * the name again). */
/* Doubles *buf's capacity: 0 or -ENOMEM (*buf is then unchanged). */
static int grow(char **buf, size_t *cap)
{
    char *big = realloc(*buf, *cap * 2);
    if (!big)
        return -ENOMEM;
    *buf = big;
    *cap *= 2;
    return 0;
}

static int read_all(int fd, char **out, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : -ENOMEM;
    while (rc == 0) {
        if (n == cap && (rc = grow(&buf, &cap)) != 0)
            break;
        ssize_t r = pread(fd, buf + n, cap - n, (off_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -errno;
        if (r == 0) {
            *out = buf;
            *len = n;
            return 0;
        }
        if (r > 0)
            n += (size_t)r;
    }
    free(buf);
    return rc;
}

static void journal_destroy(struct journal *j)
{
    while (j->head) {
        struct jrec *r = j->head;
        j->head = r->next;
        jrec_free(r);
    }
    idmap_free(&j->live);
    if (j->fd >= 0)
        close(j->fd);
    if (j->lockfd >= 0)
        close(j->lockfd); /* last: the lock covers the final compaction */
    if (j->dirfd >= 0)
        close(j->dirfd);
    pthread_mutex_destroy(&j->lock);
    free(j->file_source);
    free(j->dir);
    free(j->header);
    free(j->path);
    free(j);
}

static struct journal *journal_alloc(void)
{
    struct journal *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->fd = j->lockfd = j->dirfd = -1;
    j->max_size = j->limit = DEFAULT_MAX_SIZE;
    pthread_mutex_init(&j->lock, NULL);
    return j;
}

/* ---------- opening: who may have put the file there ---------- */

/* Only the daemon's user may create, replace or rename files in the
 * directory: else a planted symlink or journal would be followed or
 * replayed by the daemon. */
static int check_dir(const char *dir, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (st.st_uid != geteuid()) {
        LOGE("journal directory %s is owned by uid %u, not by this daemon's user (uid %u): "
             "refusing it (choose another with -o journal_dir)",
             dir, (unsigned)st.st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        LOGE("journal directory %s is writable by its group or by others (mode %03o): "
             "refusing it (chmod go-w it or choose another with -o journal_dir)",
             dir, (unsigned)(st.st_mode & 0777));
        return -EPERM;
    }
    return 0;
}

/* A file of the journal (the journal, its lock): a regular file of the
 * daemon's user with one link, so not a hard link to a file elsewhere. */
static int check_file(const struct journal *j, const char *name, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    const char *why = !S_ISREG(st.st_mode)               ? "is not a regular file"
                      : st.st_uid != geteuid()           ? "is owned by another user"
                      : st.st_nlink != 1                 ? "has more than one link"
                      : st.st_mode & (S_IWGRP | S_IWOTH) ? "is writable by others"
                                                         : NULL;
    if (!why)
        return 0;
    LOGE("journal %s: %s/%s %s: refusing it (remove it if it is not yours)", j->path, j->dir, name,
         why);
    return -EPERM;
}

/* Open name in the journal's directory, never following a symlink. */
static int open_in_dir(const struct journal *j, const char *name, int flags)
{
    int fd = openat(j->dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = -errno;
        if (rc == -ELOOP)
            LOGE("journal %s: %s/%s is a symbolic link: refusing it", j->path, j->dir, name);
        return rc;
    }
    int rc = check_file(j, name, fd);
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

/* Who holds the lock, as its pid file says (for the message only). */
static long lock_holder(int fd)
{
    char buf[24] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

/* One daemon per journal: a second one would replay the first one's live
 * jobs again, and the first one's compaction would cut the second one's
 * records. Wait up to wait_ms for the holder (a previous mount finishing
 * its queue), then refuse. */
static void log_lock_wait(const struct journal *j, int fd, int wait_ms)
{
    LOGW("journal %s is in use by another s3cfs (pid %ld), a previous mount still "
         "finishing its queued operations: waiting up to %d s for it",
         j->path, lock_holder(fd), wait_ms / 1000);
}

static void log_lock_refused(const struct journal *j, int fd, int wait_ms)
{
    LOGE("journal %s is in use by another s3cfs (pid %ld) that is still finishing "
         "its queued operations%s: refusing to mount (try again once it exited)",
         j->path, lock_holder(fd), wait_ms > 0 ? " after waiting" : "");
}

/* flock on fd, retried every 100 ms for up to wait_ms: 0, -EBUSY, -errno. */
static int lock_within(const struct journal *j, int fd, int wait_ms)
{
    for (int waited = 0;; waited += 100) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return -errno;
        if (waited >= wait_ms) {
            log_lock_refused(j, fd, wait_ms);
            return -EBUSY;
        }
        if (waited == 0)
            log_lock_wait(j, fd, wait_ms);
        sleep_ms(100);
    }
}

static int take_lock(struct journal *j, int wait_ms)
{
    struct sbuf name = SBUF_INIT;
    if (sbuf_appendf(&name, "%s.lock", j->name) != 0)
        return -ENOMEM;
    int fd = open_in_dir(j, name.data, O_RDWR | O_CREAT);
    sbuf_free(&name);
    if (fd < 0)
        return fd;
    j->lockfd = fd;
    int rc = lock_within(j, fd, wait_ms);
    if (rc != 0)
        return rc;
    char pid[24];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        LOGW("journal %s: cannot record the pid in its lock file", j->path);
    return 0;
}

/* Write the S record into the empty file. */
static int write_header(struct journal *j)
{
    if (ftruncate(j->fd, 0) != 0)
        return -errno;
    j->size = 0;
    int rc = write_locked(j, j->header, j->header_len);
    return rc;
}

/* The file's jobs belong to this source, or there are none: then the file
 * starts again with this source's record. */
static int check_source(struct journal *j, const char *want)
{
    const char *have = j->file_source;
    if (have && strcmp(have, want) == 0)
        return 0;
    if (idmap_count(&j->live) > 0) {
        LOGE("journal %s holds %zu unfinished operations of %s%s, not of this mount (%s): "
             "they are not replayed; mount that source here to finish them, or remove the file",
             j->path, idmap_count(&j->live), have ? "another source: " : "an unknown source",
             have ? have : " (no source recorded)", want);
        return -EXDEV;
    }
    return write_header(j);
}

static int make_header(struct journal *j, const char *source)
{
    struct sbuf b = SBUF_INIT;
    int rc = sbuf_append_str(&b, "S 0");
    if (rc == 0)
        rc = put_field(&b, source);
    if (rc == 0)
        rc = put_end(&b, 0);
    j->header_len = b.len;
    j->header = sbuf_detach(&b);
    return rc ? rc : j->header ? 0 : -ENOMEM;
}

static int split_path(struct journal *j, const char *path)
{
    j->path = strdup(path);
    const char *slash = strrchr(path, '/');
    if (!j->path)
        return -ENOMEM;
    j->name = j->path + (slash ? slash - path + 1 : 0);
    if (!*j->name)
        return -EINVAL;
    j->dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    return j->dir ? 0 : -ENOMEM;
}

static int journal_load(struct journal *j, const struct journal_opts *o)
{
    j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->dirfd < 0)
        return -errno;
    int rc = check_dir(j->dir, j->dirfd);
    if (rc == 0)
        rc = take_lock(j, o ? o->lock_wait_ms : 0);
    if (rc == 0 && o && o->source)
        rc = make_header(j, o->source);
    if (rc)
        return rc;
    j->fd = open_in_dir(j, j->name, O_RDWR | O_CREAT | O_APPEND);
    if (j->fd < 0)
        return j->fd;
    char *data;
    size_t len;
    rc = read_all(j->fd, &data, &len);
    if (rc)
        return rc;
    rc = load_buffer(j, data, len, &j->size);
    free(data);
    if (rc == 0 && len > j->size) {
        LOGW("journal %s: dropping a torn last record", j->path);
        if (ftruncate(j->fd, (off_t)j->size) != 0)
            rc = -errno;
    }
    if (rc == 0 && j->header)
        rc = check_source(j, o->source);
    return rc;
}

int journal_open_opts(const char *path, const struct journal_opts *opts, struct journal **out)
{
    *out = NULL;
    struct journal *j = journal_alloc();
    if (!j)
        return -ENOMEM;
    int rc = split_path(j, path);
    if (rc == 0)
        rc = journal_load(j, opts);
    if (rc) {
        LOGE("journal %s: %s", path, strerror(-rc));
        journal_destroy(j);
        return rc;
    }
    if (idmap_count(&j->live) > 0)
        LOGI("journal %s: %zu unfinished jobs from a previous run", path, idmap_count(&j->live));
    *out = j;
    return 0;
}

int journal_open(const char *path, struct journal **out)
{
    return journal_open_opts(path, NULL, out);
}

int journal_open_memory(const char *data, size_t len, struct journal **out)
{
    *out = NULL;
    struct journal *j = journal_alloc();
    if (!j || !(j->path = strdup("(memory)"))) {
        if (j)
            journal_destroy(j);
        return -ENOMEM;
    }
    /* the very parser of journal_open, with no file behind it */
    int rc = load_buffer(j, data, len, &j->size);
    if (rc) {
        journal_destroy(j);
        return rc;
    }
    *out = j;
    return 0;
}

void journal_close(struct journal *j)
{
    if (j)
        journal_destroy(j);
}

void journal_set_max_size(struct journal *j, uint64_t bytes)
{
    pthread_mutex_lock(&j->lock);
    j->max_size = j->limit = bytes < MIN_MAX_SIZE ? MIN_MAX_SIZE : bytes;
    pthread_mutex_unlock(&j->lock);
}

void journal_test_writes(struct journal *j, int delay_ms, int fail_rc)
{
    pthread_mutex_lock(&j->lock);
    j->test_delay_ms = delay_ms;
    j->test_fail_rc = fail_rc;
    pthread_mutex_unlock(&j->lock);
}

void journal_info(struct journal *j, struct journal_info *out)
{
    pthread_mutex_lock(&j->lock);
    *out = (struct journal_info){j->size, idmap_count(&j->live), j->max_id};
    pthread_mutex_unlock(&j->lock);
}

int journal_replay(struct journal *j, journal_replay_fn cb, void *arg)
{
    /* taken out under the lock, handed over without it: cb resubmits, and
     * the engine's completions call journal_done meanwhile */
    pthread_mutex_lock(&j->lock);
    struct jrec *r = j->head;
    j->head = j->tail = NULL;
    for (struct jrec *x = r; x; x = x->next)
        *idmap_get(&j->live, x->id) = NULL;
    pthread_mutex_unlock(&j->lock);
    int rc = 0;
    while (r) {
        struct jrec *next = r->next;
        if (rc == 0)
            rc = cb(arg, r->id, &r->spec);
        jrec_free(r);
        r = next;
    }
    return rc;
}

/* ---------- durability and size ---------- */

int journal_sync(struct journal *j)
{
    /* a duplicate keeps the descriptor valid if a rewrite replaces it */
    pthread_mutex_lock(&j->lock);
    uint64_t writes = j->writes;
    int fd = writes != j->synced ? dup(j->fd) : -2;
    pthread_mutex_unlock(&j->lock);
    if (fd == -2)
        return 0; /* nothing written since the last fsync */
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    pthread_mutex_lock(&j->lock);
    if (rc == 0 && writes > j->synced)
        j->synced = writes;
    pthread_mutex_unlock(&j->lock);
    return rc;
}

void journal_sync_count(struct journal *j, uint64_t *writes, uint64_t *synced)
{
    pthread_mutex_lock(&j->lock);
    *writes = j->writes;
    *synced = j->synced;
    pthread_mutex_unlock(&j->lock);
}

/* Whether a line read back from the file belongs in a rewrite. */
static bool line_live(const struct journal *j, const char *line, size_t len)
{
    char type;
    uint64_t id;
    size_t fields, end;
    if (line_head(line, len, &type, &id, &fields, &end) != 0)
        return false;
    return type != 'F' && type != 'S' && idmap_get(&j->live, id) != NULL;
}

/* The header and the live lines of the journal, read through its fd. */
static int live_copy(const struct journal *j, struct sbuf *out)
{
    char *data;
    size_t len;
    int rc = read_all(j->fd, &data, &len);
    if (rc)
        return rc;
    if (j->header)
        rc = sbuf_append(out, j->header, j->header_len);
    for (size_t at = 0; rc == 0 && at < len;) {
        const char *nl = memchr(data + at, '\n', len - at);
        if (!nl)
            break;
        size_t n = (size_t)(nl - (data + at));
        if (line_live(j, data + at, n))
            rc = sbuf_append(out, data + at, n + 1);
        at += n + 1;
    }
    free(data);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A new temporary file: never an existing one, never through a link. A
 * stale one (a crash mid-rewrite) is removed first: it is ours, the
 * directory being only the daemon's user's. */
static int create_tmp(const struct journal *j, const char *tmp)
{
    int flags = O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(j->dirfd, tmp, flags, 0600);
    if (fd < 0 && errno == EEXIST && unlinkat(j->dirfd, tmp, 0) == 0)
        fd = openat(j->dirfd, tmp, flags, 0600);
    return fd < 0 ? -errno : fd;
}

/* Replace the journal by its live lines: written to NAME.tmp, fsync'd,
 * then renamed over it, so a failure at any step leaves the journal as it
 * was. */
static int rewrite_locked(struct journal *j)
{
    struct sbuf tmp = SBUF_INIT, live = SBUF_INIT;
    if (sbuf_appendf(&tmp, "%s.tmp", j->name) != 0)
        return -ENOMEM;
    int nfd = -1, rc = live_copy(j, &live);
    if (rc == 0 && (nfd = create_tmp(j, tmp.data)) < 0)
        rc = nfd;
    if (rc == 0)
        rc = write_all(nfd, live.data ? live.data : "", live.len);
    if (rc == 0 && fsync(nfd) != 0)
        rc = -errno;
    if (rc == 0 && renameat(j->dirfd, tmp.data, j->dirfd, j->name) != 0)
        rc = -errno;
    if (rc == 0) {
        if (fsync(j->dirfd) != 0)
            LOGW("journal %s: fsync of its directory: %s", j->path, strerror(errno));
        close(j->fd);
        j->fd = nfd;
        j->size = live.len;
        j->synced = ++j->writes; /* the new file was fsync'd whole */
    } else {
        if (nfd >= 0) {
            close(nfd);
            unlinkat(j->dirfd, tmp.data, 0);
        }
        LOGW("journal %s: rewrite failed: %s", j->path, strerror(-rc));
    }
    sbuf_free(&live);
    sbuf_free(&tmp);
    return rc;
}

int journal_compact(struct journal *j)
{
    int rc = 0;
    pthread_mutex_lock(&j->lock);
    if (idmap_count(&j->live) == 0 && j->size > j->header_len) {
        /* the source's record stays */
        rc = ftruncate(j->fd, (off_t)j->header_len) == 0 ? 0 : -errno;
        if (rc == 0) {
            j->size = j->header_len;
            j->writes++;
        }
        j->limit = j->max_size;
    } else if (idmap_count(&j->live) > 0 && j->size > j->limit) {
        rc = rewrite_locked(j);
        /* live records alone near the limit would rewrite on every call */
        if (rc == 0)
            j->limit = j->size * 2 > j->max_size ? j->size * 2 : j->max_size;
    }
    pthread_mutex_unlock(&j->lock);
    return rc;
}
