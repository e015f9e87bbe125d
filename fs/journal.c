/* journal.c - the intent journal (see journal.h for the contract).
 *
 * In memory the journal keeps only the set of live ids (an open-addressing
 * map), so its size follows the number of pending jobs, not the length of
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
#include <sys/stat.h>
#include <unistd.h>

#include "s3cfs/buf.h"
#include "s3cfs/log.h"
#include "s3cfs/uri.h"

#define DEFAULT_MAX_SIZE (4u << 20)
#define MIN_MAX_SIZE     4096u
#define NULL_FIELD       "*" /* never produced by the encoding, which escapes '*' */

/* ---------- a map from job id (never 0) to a pointer ---------- */

struct idmap {
    uint64_t *ids; /* 0: empty slot */
    void **vals;
    size_t cap; /* a power of two, or 0 */
    size_t n;
};

static size_t id_home(uint64_t id, size_t cap)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static size_t id_find(const struct idmap *m, uint64_t id)
{
    size_t i = id_home(id, m->cap);
    while (m->ids[i] != 0 && m->ids[i] != id)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int idmap_grow(struct idmap *m)
{
    struct idmap big = {.cap = m->cap ? m->cap * 2 : 64};
    big.ids = calloc(big.cap, sizeof *big.ids);
    big.vals = calloc(big.cap, sizeof *big.vals);
    if (!big.ids || !big.vals) {
        free(big.ids);
        free(big.vals);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->ids[i] == 0)
            continue;
        size_t s = id_find(&big, m->ids[i]);
        big.ids[s] = m->ids[i];
        big.vals[s] = m->vals[i];
    }
    big.n = m->n;
    free(m->ids);
    free(m->vals);
    *m = big;
    return 0;
}

/* Insert or overwrite. */
static int idmap_put(struct idmap *m, uint64_t id, void *val)
{
    if ((m->n + 1) * 4 > m->cap * 3 && idmap_grow(m) != 0)
        return -ENOMEM;
    size_t i = id_find(m, id);
    m->n += m->ids[i] == 0;
    m->ids[i] = id;
    m->vals[i] = val;
    return 0;
}

/* The value's slot, or NULL when id is absent. */
static void **idmap_get(const struct idmap *m, uint64_t id)
{
    if (m->cap == 0)
        return NULL;
    size_t i = id_find(m, id);
    return m->ids[i] == id ? &m->vals[i] : NULL;
}

/* Remove id, shifting later entries of the probe chain back so that no
 * tombstones are needed. */
static void idmap_del(struct idmap *m, uint64_t id)
{
    if (!idmap_get(m, id))
        return;
    size_t mask = m->cap - 1, i = id_find(m, id), j = i;
    m->ids[i] = 0;
    m->n--;
    for (;;) {
        j = (j + 1) & mask;
        if (m->ids[j] == 0)
            return;
        size_t k = id_home(m->ids[j], m->cap);
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        m->ids[i] = m->ids[j];
        m->vals[i] = m->vals[j];
        m->ids[j] = 0;
        i = j;
    }
}

static void idmap_free(struct idmap *m)
{
    free(m->ids);
    free(m->vals);
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
    int fd;                   /* lock: O_APPEND */
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
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
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
    if (rc == 0 && !copy && s->guard) /* absent when 0: the format before guards */
        rc = sbuf_appendf(b, " %" PRIu64, s->guard);
    return rc ? rc : put_end(b, 0);
}

/* One write(2) in the normal case; a short write continues, a failed one
 * cuts the file back so no partial line stays in front of later records. */
static int write_locked(struct journal *j, const char *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(j->fd, p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int rc = w < 0 ? -errno : -EIO;
            if (ftruncate(j->fd, (off_t)j->size) != 0)
                LOGW("journal %s: cannot cut a failed write: %s", j->path, strerror(errno));
            LOGE("journal %s: write: %s", j->path, strerror(-rc));
            return rc;
        }
        done += (size_t)w;
    }
    j->size += n;
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
    /* no job has id 0: it marks the live map's empty slots (a record with
     * it was replayed as a job, and "M 0" read a freed one) */
    int rc = parse_u64(line + 2, id_end - 2, id);
    return rc == 0 && *id == 0 ? -EINVAL : rc;
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
    if (copy ? p->n < 8 : p->n != 2 && p->n != 3)
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
        return p->n == 3 ? parse_id(field(p, b, 2), &s->guard) : 0;
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
    r->prev = j->tail;
    *(j->tail ? &j->tail->next : &j->head) = r;
    j->tail = r;
    return 0;
}

/* Apply one complete line read at open. */
static int load_line(struct journal *j, const char *line, size_t len)
{
    struct parsed p = {0};
    int rc = parse_line(line, len, &p);
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

/* Read every complete line; returns the length of the complete part. */
static int load(struct journal *j, FILE *f, uint64_t *good)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    *good = 0;
    while (rc != -ENOMEM && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n')
            break; /* torn: the crash came mid-write */
        rc = load_line(j, line, (size_t)n - 1);
        if (rc && rc != -ENOMEM)
            LOGW("journal %s: skipping a bad record at byte %" PRIu64, j->path, *good);
        *good += (uint64_t)n;
    }
    free(line);
    return rc == -ENOMEM || ferror(f) ? (rc ? rc : -EIO) : 0;
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
    pthread_mutex_destroy(&j->lock);
    free(j->path);
    free(j);
}

static int journal_load(struct journal *j)
{
    j->fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0)
        return -errno;
    FILE *f = fopen(j->path, "re");
    if (!f)
        return -errno;
    int rc = load(j, f, &j->size);
    fclose(f);
    struct stat st;
    if (rc == 0 && fstat(j->fd, &st) != 0)
        rc = -errno;
    if (rc == 0 && (uint64_t)st.st_size > j->size) {
        LOGW("journal %s: dropping a torn last record", j->path);
        if (ftruncate(j->fd, (off_t)j->size) != 0)
            rc = -errno;
    }
    return rc;
}

/* A journal with no file yet: NULL on ENOMEM. */
static struct journal *journal_new(const char *path)
{
    struct journal *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->fd = -1;
    j->max_size = j->limit = DEFAULT_MAX_SIZE;
    pthread_mutex_init(&j->lock, NULL);
    j->path = strdup(path);
    if (!j->path) {
        journal_destroy(j);
        return NULL;
    }
    return j;
}

int journal_open(const char *path, struct journal **out)
{
    struct journal *j = journal_new(path);
    int rc = j ? journal_load(j) : -ENOMEM;
    if (rc) {
        LOGE("journal %s: %s", path, strerror(-rc));
        journal_destroy(j);
        return rc;
    }
    if (j->live.n > 0)
        LOGI("journal %s: %zu unfinished jobs from a previous run", path, j->live.n);
    *out = j;
    return 0;
}

int journal_open_memory(const char *data, size_t len, struct journal **out)
{
    struct journal *j = journal_new("(memory)");
    /* fmemopen: the very reader of journal_open, with no file behind it */
    FILE *f = j ? fmemopen(len ? (void *)data : "", len, "r") : NULL;
    int rc = !j ? -ENOMEM : !f ? -errno : load(j, f, &j->size);
    if (f)
        fclose(f);
    if (rc) {
        if (j)
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

void journal_info(struct journal *j, struct journal_info *out)
{
    pthread_mutex_lock(&j->lock);
    *out = (struct journal_info){j->size, j->live.n, j->max_id};
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
    int fd = dup(j->fd);
    pthread_mutex_unlock(&j->lock);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Whether a line read back from the file belongs in a rewrite. */
static bool line_live(const struct journal *j, const char *line, size_t len)
{
    char type;
    uint64_t id;
    size_t fields, end;
    if (line_head(line, len, &type, &id, &fields, &end) != 0)
        return false;
    return type != 'F' && idmap_get(&j->live, id) != NULL;
}

static int copy_live(const struct journal *j, FILE *in, FILE *out, uint64_t *written)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    *written = 0;
    while ((n = getline(&line, &cap, in)) > 0 && line[n - 1] == '\n') {
        if (!line_live(j, line, (size_t)n - 1))
            continue;
        if (fwrite(line, 1, (size_t)n, out) != (size_t)n)
            break;
        *written += (uint64_t)n;
    }
    free(line);
    return ferror(in) || ferror(out) ? -EIO : 0;
}

static int sync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return -ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Write the live lines of the journal to tmp, durably. */
static int write_live_copy(const struct journal *j, const char *tmp, uint64_t *written)
{
    int rc = 0, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *in = fopen(j->path, "re");
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!in || !out)
        rc = -errno;
    if (rc == 0)
        rc = copy_live(j, in, out, written);
    if (rc == 0 && (fflush(out) != 0 || fsync(fd) != 0))
        rc = -errno;
    if (out)
        fclose(out);
    else if (fd >= 0)
        close(fd);
    if (in)
        fclose(in);
    return rc;
}

/* Replace the journal by its live lines: written to path.tmp, opened, then
 * renamed over it, so a failure at any step leaves the journal as it was. */
static int rewrite_locked(struct journal *j)
{
    struct sbuf tmp = SBUF_INIT;
    if (sbuf_appendf(&tmp, "%s.tmp", j->path) != 0)
        return -ENOMEM;
    uint64_t written = 0;
    int nfd = -1, rc = write_live_copy(j, tmp.data, &written);
    if (rc == 0 && (nfd = open(tmp.data, O_RDWR | O_APPEND | O_CLOEXEC)) < 0)
        rc = -errno;
    if (rc == 0 && rename(tmp.data, j->path) != 0) {
        rc = -errno;
        close(nfd);
    }
    if (rc == 0) {
        sync_dir_of(j->path);
        close(j->fd);
        j->fd = nfd;
        j->size = written;
    } else {
        unlink(tmp.data);
        LOGW("journal %s: rewrite failed: %s", j->path, strerror(-rc));
    }
    sbuf_free(&tmp);
    return rc;
}

int journal_compact(struct journal *j)
{
    int rc = 0;
    pthread_mutex_lock(&j->lock);
    if (j->live.n == 0 && j->size > 0) {
        rc = ftruncate(j->fd, 0) == 0 ? 0 : -errno;
        if (rc == 0)
            j->size = 0;
        j->limit = j->max_size;
    } else if (j->live.n > 0 && j->size > j->limit) {
        rc = rewrite_locked(j);
        /* live records alone near the limit would rewrite on every call */
        if (rc == 0)
            j->limit = j->size * 2 > j->max_size ? j->size * 2 : j->max_size;
    }
    pthread_mutex_unlock(&j->lock);
    return rc;
}
