/* credentials.c - the credentials chain described in credentials.h, and
 * the provider that keeps and refreshes what it found.
 *
 * Every source is a function that fills a struct found when it has keys and
 * leaves it empty when it has none, so the chain is one loop that stops at
 * the first keys or the first real error (a file that must not be used, a
 * malformed line). The sources read files (creds_file.c) or ask instance
 * metadata (creds_imds.c); what the three share is in creds_internal.h and
 * defined here. Only instance-metadata keys expire; creds_get() refreshes
 * them with the mutex released, one thread at a time.
 */
#include "s3cfs/credentials.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "creds_internal.h"
#include "s3cfs/buf.h"
#include "s3cfs/log.h"

#define ERR_CODE        "CredentialsError"
#define REFRESH_WINDOW  300 /* seconds before expiry when IMDS keys are renewed */
#define RETRY_DELAY     10  /* seconds between fruitless IMDS refreshes */
#define ETC_PASSWD_FILE "/etc/passwd-s3fs"
#define NO_CREDS_MESSAGE                                                                           \
    "no credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or passwd_file"

/* Every source text ever shown, newest first: creds_source() hands out a
 * pointer without a lock, so a text stays alive until the provider dies. */
struct source_text {
    struct source_text *next;
    char text[];
};

struct creds_provider {
    /* Copied from the options at creation; read-only afterwards. */
    char *access_key;
    char *secret_key;
    char *session_token;
    char *profile;
    char *passwd_file;
    char *bucket;
    bool no_imds;

    pthread_mutex_t lock;
    pthread_cond_t updated;      /* lock: broadcast when `updating` drops */
    struct s3_creds cur;         /* lock */
    struct source_text *sources; /* lock: head is the current source */
    bool from_imds;              /* lock */
    bool updating;               /* lock: one thread fetches with the lock released */
    time_t next_try;             /* lock: no voluntary IMDS refresh before this */
};

/* ---- shared by the sources (creds_internal.h) ---- */

int creds_fail(struct s3_error *err, int rc, const char *fmt, ...)
{
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s3_error_set(err, ERR_CODE, msg);
    return rc;
}

/* strerror() is not thread-safe and reloads run beside request threads. */
int creds_fail_errno(struct s3_error *err, int e, const char *what, const char *path)
{
    char buf[128];
    return creds_fail(err, -e, "%s %s: %s", what, path, strerror_r(e, buf, sizeof buf));
}

/* Unset and empty mean the same to every variable we read. */
const char *creds_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

const char *creds_nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

char *creds_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Refuses instead of truncating: a cut key would only surface later as a
 * puzzling signature mismatch. */
bool creds_copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

int creds_path_join(char *out, size_t size, const char *dir, const char *rel)
{
    int n = snprintf(out, size, "%s/%s", dir, rel);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int creds_put_keys(struct s3_creds *c, const char *access, const char *secret, const char *token)
{
    access = creds_nonempty(access);
    secret = creds_nonempty(secret);
    token = creds_nonempty(token);
    memset(c, 0, sizeof *c);
    if (!access && !secret && !token)
        return 0;
    if (!access || !secret)
        return -EINVAL;
    if (!creds_copy_str(c->access_key, sizeof c->access_key, access) ||
        !creds_copy_str(c->secret_key, sizeof c->secret_key, secret) ||
        !creds_copy_str(c->session_token, sizeof c->session_token, token ? token : "")) {
        memset(c, 0, sizeof *c);
        return -ENAMETOOLONG;
    }
    return 0;
}

static int put_keys_or_fail(struct found *f, const char *access, const char *secret,
                            const char *token, const char *where, struct s3_error *err)
{
    int rc = creds_put_keys(&f->creds, access, secret, token);
    if (rc == -ENAMETOOLONG)
        return creds_fail(err, -EINVAL, "%s: a key or token is too long", where);
    if (rc < 0)
        return creds_fail(err, -EINVAL, "%s: needs both an access key and a secret key", where);
    return 0;
}

/* ---- the chain ---- */

static int from_options(const struct creds_provider *p, struct found *f, struct s3_error *err)
{
    snprintf(f->source, sizeof f->source, "options");
    return put_keys_or_fail(f, p->access_key, p->secret_key, p->session_token, "options", err);
}

static int from_passwd_option(const struct creds_provider *p, struct found *f, struct s3_error *err)
{
    if (!p->passwd_file)
        return 0;
    return creds_passwd_read(p->passwd_file, p->bucket, true, S_IRWXG | S_IRWXO, f, err);
}

static int from_env(const struct creds_provider *p, struct found *f, struct s3_error *err)
{
    (void)p;
    const char *access = creds_env("AWS_ACCESS_KEY_ID"),
               *secret = creds_env("AWS_SECRET_ACCESS_KEY");
    /* a session token alone is left over from something else: ignore it */
    if (!access && !secret)
        return 0;
    snprintf(f->source, sizeof f->source, "environment");
    return put_keys_or_fail(f, access, secret, creds_env("AWS_SESSION_TOKEN"),
                            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", err);
}

static int from_profile(const struct creds_provider *p, struct found *f, struct s3_error *err)
{
    const char *name = creds_profile_name(p->profile);
    char where[2 * PATH_MAX + 8];
    struct creds_profile d;
    int rc = creds_read_profile(name, &d, where, sizeof where, err);
    if (rc == 0 && !d.found && strcmp(name, "default") != 0)
        rc = creds_fail(err, -ENOENT, "profile %s not found in %s", name, where);
    if (rc == 0) {
        char label[sizeof err->message]; /* only ever part of a message */
        snprintf(label, sizeof label, "profile %.64s in %.160s", name, where);
        rc = put_keys_or_fail(f, d.c.access_key, d.c.secret_key, d.c.session_token, label, err);
        snprintf(f->source, sizeof f->source, "profile %s", name);
    }
    explicit_bzero(&d, sizeof d);
    return rc;
}

/* s3fs's own fallbacks. /etc/passwd-s3fs may be group-readable, as s3fs
 * allows, so a group can share one system-wide file. */
static int from_default_passwd(const struct creds_provider *p, struct found *f,
                               struct s3_error *err)
{
    char path[PATH_MAX];
    const char *home = creds_env("HOME");
    int rc = 0;
    if (home && creds_path_join(path, sizeof path, home, ".passwd-s3fs") == 0)
        rc = creds_passwd_read(path, p->bucket, false, S_IRWXG | S_IRWXO, f, err);
    if (rc == 0 && !f->creds.access_key[0])
        rc = creds_passwd_read(ETC_PASSWD_FILE, p->bucket, false, S_IRWXO, f, err);
    return rc;
}

static bool imds_disabled(const struct creds_provider *p)
{
    const char *v = creds_env("AWS_EC2_METADATA_DISABLED");
    return p->no_imds || (v && strcasecmp(v, "true") == 0);
}

/* Off EC2 the endpoint does not answer: that is "nothing here", and the
 * reason stays in err->message for the final "no credentials" message. An
 * endpoint that answers but refuses is a real error. */
static int from_imds(const struct creds_provider *p, struct found *f, struct s3_error *err)
{
    if (imds_disabled(p))
        return 0;
    int rc = creds_imds_fetch(&f->creds, err);
    if (rc < 0 && err->http_status == 0 && err->curl_code != 0)
        return 0;
    f->imds = true;
    snprintf(f->source, sizeof f->source, "instance metadata");
    return rc;
}

typedef int (*source_fn)(const struct creds_provider *p, struct found *f, struct s3_error *err);

static const struct {
    const char *name;
    source_fn fn;
} chain[] = {
    {"options", from_options},
    {"passwd_file option", from_passwd_option},
    {"environment", from_env},
    {"profile", from_profile},
    {"default passwd files", from_default_passwd},
    {"instance metadata", from_imds},
};

static int resolve(const struct creds_provider *p, struct found *f, struct s3_error *err)
{
    s3_error_clear(err);
    for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
        memset(f, 0, sizeof *f);
        LOGD("credentials: trying %s", chain[i].name);
        int rc = chain[i].fn(p, f, err);
        if (rc < 0) {
            explicit_bzero(f, sizeof *f);
            return rc;
        }
        if (f->creds.access_key[0])
            return 0;
    }
    char why[sizeof err->message];
    snprintf(why, sizeof why, "%s", err->message);
    return creds_fail(err, -ENOENT, NO_CREDS_MESSAGE "%s%s", why[0] ? "; " : "", why);
}

/* ---- the provider ---- */

/* Called with p->lock held. Keeps the old source text alive (see
 * struct source_text). */
static int set_source(struct creds_provider *p, const char *text)
{
    if (p->sources && strcmp(p->sources->text, text) == 0)
        return 0;
    size_t n = strlen(text) + 1;
    struct source_text *s = malloc(sizeof *s + n);
    if (!s)
        return -ENOMEM;
    memcpy(s->text, text, n);
    s->next = p->sources;
    p->sources = s;
    return 0;
}

/* Called with p->lock held. */
static int install(struct creds_provider *p, const struct found *f, struct s3_error *err)
{
    if (set_source(p, f->source) < 0)
        return creds_fail(err, -ENOMEM, "out of memory");
    p->cur = f->creds;
    p->from_imds = f->imds;
    p->next_try = 0;
    LOGI("credentials from %s (access key id %s)", f->source, f->creds.access_key);
    return 0;
}

static int dup_opt(char **dst, const char *src)
{
    if (!creds_nonempty(src))
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

static int copy_options(struct creds_provider *p, const struct creds_options *o)
{
    if (!o)
        return 0;
    p->no_imds = o->no_imds;
    if (dup_opt(&p->access_key, o->access_key) || dup_opt(&p->secret_key, o->secret_key) ||
        dup_opt(&p->session_token, o->session_token) || dup_opt(&p->profile, o->profile) ||
        dup_opt(&p->passwd_file, o->passwd_file) || dup_opt(&p->bucket, o->bucket))
        return -ENOMEM;
    return 0;
}

static void free_secret(char *s)
{
    if (s)
        wipe_free(s, strlen(s));
}

void creds_provider_free(struct creds_provider *p)
{
    if (!p)
        return;
    pthread_cond_destroy(&p->updated);
    pthread_mutex_destroy(&p->lock);
    free_secret(p->secret_key);
    free_secret(p->session_token);
    free(p->access_key);
    free(p->profile);
    free(p->passwd_file);
    free(p->bucket);
    while (p->sources) {
        struct source_text *next = p->sources->next;
        free(p->sources);
        p->sources = next;
    }
    explicit_bzero(&p->cur, sizeof p->cur);
    free(p);
}

int creds_provider_new(const struct creds_options *opt, struct creds_provider **out,
                       struct s3_error *err)
{
    *out = NULL;
    s3_error_clear(err);
    struct creds_provider *p = calloc(1, sizeof *p);
    if (!p)
        return creds_fail(err, -ENOMEM, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->updated, NULL);
    int rc = copy_options(p, opt);
    if (rc < 0) {
        creds_provider_free(p);
        return creds_fail(err, rc, "out of memory");
    }
    struct found f;
    rc = resolve(p, &f, err);
    if (rc == 0) {
        pthread_mutex_lock(&p->lock);
        rc = install(p, &f, err);
        pthread_mutex_unlock(&p->lock);
    }
    explicit_bzero(&f, sizeof f);
    if (rc < 0) {
        LOGD("credentials: %s", err->message);
        creds_provider_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* Called with p->lock held. */
static bool needs_refresh(const struct creds_provider *p, time_t now)
{
    if (!p->from_imds || p->cur.expires == 0 || p->cur.expires - now > REFRESH_WINDOW)
        return false;
    return now >= p->next_try || p->cur.expires <= now;
}

/* Called with p->lock held. */
static void finish_update(struct creds_provider *p)
{
    p->updating = false;
    pthread_cond_broadcast(&p->updated);
}

/* Called with p->lock held after a failed fetch (rc): the current keys
 * serve on while they last, so an IMDS hiccup costs no request. */
static int refresh_failed(struct creds_provider *p, time_t now, int rc, const struct s3_error *err)
{
    p->next_try = now + RETRY_DELAY;
    if (p->cur.expires <= now)
        return rc;
    LOGW("credentials refresh failed (%s); keeping the current ones for %lds", err->message,
         (long)(p->cur.expires - now));
    return 0;
}

/* Runs with p->updating set by this thread and the lock released. */
static int refresh(struct creds_provider *p, struct s3_creds *out, struct s3_error *err)
{
    struct s3_creds fresh;
    s3_error_clear(err);
    int rc = creds_imds_fetch(&fresh, err);
    pthread_mutex_lock(&p->lock);
    time_t now = time(NULL);
    if (rc == 0) {
        /* IMDS rotates keys on its own schedule; the same key again means
         * "not yet", and asking on every request would hammer it. */
        if (strcmp(fresh.access_key, p->cur.access_key) == 0)
            p->next_try = now + RETRY_DELAY;
        p->cur = fresh;
    } else {
        rc = refresh_failed(p, now, rc, err);
    }
    if (rc == 0)
        *out = p->cur;
    finish_update(p);
    pthread_mutex_unlock(&p->lock);
    explicit_bzero(&fresh, sizeof fresh);
    return rc;
}

int creds_get(struct creds_provider *p, struct s3_creds *out, struct s3_error *err)
{
    pthread_mutex_lock(&p->lock);
    for (;;) {
        time_t now = time(NULL);
        /* current keys are fine, or another thread is renewing them and
         * they still work meanwhile */
        if (!needs_refresh(p, now) || (p->updating && p->cur.expires > now)) {
            *out = p->cur;
            pthread_mutex_unlock(&p->lock);
            return 0;
        }
        if (!p->updating)
            break;
        pthread_cond_wait(&p->updated, &p->lock);
    }
    p->updating = true;
    pthread_mutex_unlock(&p->lock);
    return refresh(p, out, err);
}

int creds_reload(struct creds_provider *p, struct s3_error *err)
{
    pthread_mutex_lock(&p->lock);
    while (p->updating)
        pthread_cond_wait(&p->updated, &p->lock);
    p->updating = true;
    pthread_mutex_unlock(&p->lock);

    struct found f;
    int rc = resolve(p, &f, err);
    pthread_mutex_lock(&p->lock);
    if (rc == 0)
        rc = install(p, &f, err);
    else
        LOGW("credentials reload failed, keeping those from %s: %s", p->sources->text,
             err->message);
    finish_update(p);
    pthread_mutex_unlock(&p->lock);
    explicit_bzero(&f, sizeof f);
    return rc;
}

const char *creds_source(struct creds_provider *p)
{
    pthread_mutex_lock(&p->lock);
    const char *s = p->sources->text;
    pthread_mutex_unlock(&p->lock);
    return s;
}
