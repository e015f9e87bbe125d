/* credentials.c - the credentials chain described in credentials.h.
 *
 * Every source is a function that fills a struct found when it has keys and
 * leaves it empty when it has none, so the chain is one loop that stops at
 * the first keys or the first real error (a file that must not be used, a
 * malformed line). Only instance-metadata keys expire; creds_get() refreshes
 * them with the mutex released, one thread at a time.
 */
#include "s3cfs/credentials.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "s3cfs/buf.h"
#include "s3cfs/log.h"

#define ERR_CODE        "CredentialsError"
#define REFRESH_WINDOW  300 /* seconds before expiry when IMDS keys are renewed */
#define RETRY_DELAY     10  /* seconds between fruitless IMDS refreshes */
#define IMDS_DEFAULT    "http://169.254.169.254"
#define IMDS_TOKEN_PATH "/latest/api/token"
#define IMDS_ROLES_PATH "/latest/meta-data/iam/security-credentials/"
#define IMDS_MAX_BODY   65536
#define ETC_PASSWD_FILE "/etc/passwd-s3fs"
#define CREDS_FILE_MAX  (1 << 20) /* bytes; a credentials file is a few lines */
#define NO_CREDS_MESSAGE                                                                           \
    "no credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or passwd_file"

/* What one link of the chain produced. */
struct found {
    struct s3_creds creds; /* access_key[0] == '\0': nothing here */
    char source[PATH_MAX + 32];
    bool imds; /* expires and must be refreshed from instance metadata */
};

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

/* ---- small helpers ---- */

static int fail(struct s3_error *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills err and returns rc, so that callers can `return fail(...)`. */
static int fail(struct s3_error *err, int rc, const char *fmt, ...)
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
static int fail_errno(struct s3_error *err, int e, const char *what, const char *path)
{
    char buf[128];
    return fail(err, -e, "%s %s: %s", what, path, strerror_r(e, buf, sizeof buf));
}

/* Unset and empty mean the same to every variable we read. */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

static char *trim(char *s)
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
static bool copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static int path_join(char *out, size_t size, const char *dir, const char *rel)
{
    int n = snprintf(out, size, "%s/%s", dir, rel);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE, else ~/.aws/<leaf>. The
 * AWS tools expand a leading "~/" in the variables, so we do too. "" when
 * there is no HOME to look in. */
static int aws_file(char *out, size_t size, const char *var, const char *leaf)
{
    const char *v = env(var);
    const char *home = env("HOME");
    out[0] = '\0';
    if (v && strncmp(v, "~/", 2) != 0)
        return copy_str(out, size, v) ? 0 : -ENAMETOOLONG;
    if (!home)
        return 0;
    if (v)
        return path_join(out, size, home, v + 2);
    char rel[64];
    snprintf(rel, sizeof rel, ".aws/%s", leaf);
    return path_join(out, size, home, rel);
}

static const char *profile_name(const char *opt_profile)
{
    if (nonempty(opt_profile))
        return opt_profile;
    return env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
}

/* Fills c from a key set. Nothing at all: 0 with c empty. A lone half (or a
 * token without keys): -EINVAL. Too long for struct s3_creds: -ENAMETOOLONG
 * (callers turn both into -EINVAL with their own context). */
static int put_keys(struct s3_creds *c, const char *access, const char *secret, const char *token)
{
    access = nonempty(access);
    secret = nonempty(secret);
    token = nonempty(token);
    memset(c, 0, sizeof *c);
    if (!access && !secret && !token)
        return 0;
    if (!access || !secret)
        return -EINVAL;
    if (!copy_str(c->access_key, sizeof c->access_key, access) ||
        !copy_str(c->secret_key, sizeof c->secret_key, secret) ||
        !copy_str(c->session_token, sizeof c->session_token, token ? token : "")) {
        memset(c, 0, sizeof *c);
        return -ENAMETOOLONG;
    }
    return 0;
}

static int put_keys_or_fail(struct found *f, const char *access, const char *secret,
                            const char *token, const char *where, struct s3_error *err)
{
    int rc = put_keys(&f->creds, access, secret, token);
    if (rc == -ENAMETOOLONG)
        return fail(err, -EINVAL, "%s: a key or token is too long", where);
    if (rc < 0)
        return fail(err, -EINVAL, "%s: needs both an access key and a secret key", where);
    return 0;
}

typedef int (*line_fn)(char *line, unsigned lineno, void *ctx);

/* Calls fn for each line of DATA that is neither blank nor a comment, with
 * trailing blanks stripped but leading ones kept (the ini reader needs
 * them). Each line is copied into a stack buffer, so fn may cut it up, and
 * the copy is wiped at the end: it held keys. */
static int for_each_line(const char *data, size_t len, const char *name, line_fn fn, void *ctx,
                         struct s3_error *err)
{
    char line[CREDS_LINE_MAX + 1];
    unsigned lineno = 0;
    int rc = 0;
    for (size_t at = 0; rc == 0 && at < len;) {
        const char *nl = memchr(data + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (data + at)) : len - at;
        lineno++;
        if (n > CREDS_LINE_MAX)
            rc = fail(err, -EINVAL, "%s line %u: longer than %d bytes", name, lineno,
                      CREDS_LINE_MAX);
        else if (memchr(data + at, '\0', n))
            rc = fail(err, -EINVAL, "%s line %u: a NUL byte (not a text file?)", name, lineno);
        if (rc)
            break;
        memcpy(line, data + at, n);
        line[n] = '\0';
        at += n + 1;
        char *body = trim(line);
        if (*body != '\0' && *body != '#' && *body != ';')
            rc = fn(line, lineno, ctx);
    }
    explicit_bzero(line, sizeof line);
    return rc;
}

/* ---- reading a credentials file ---- */

/* The rules every file that may hold keys is opened under (the option's
 * passwd file, ~/.passwd-s3fs, /etc/passwd-s3fs, the AWS credentials and
 * config files):
 *  - O_NOFOLLOW: a symbolic link is refused, so a link planted where the
 *    file should be cannot point us at a file of the attacker's choosing;
 *  - owned by the user s3cfs runs as, or by root: a file someone else owns
 *    can be rewritten by them (s3cfs often runs as root and reads anything);
 *  - a regular file, at most CREDS_FILE_MAX bytes, lines of at most
 *    CREDS_LINE_MAX bytes: a device, a FIFO (O_NONBLOCK: never a hang) or a
 *    huge file is a mistake, not something to read for ever;
 *  - none of the FORBIDDEN mode bits (the s3fs rule for passwd files).
 * fstat() on the open descriptor, so the file checked is the file read. */
static int check_file(int fd, const char *what, const char *path, mode_t forbidden,
                      struct s3_error *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return fail_errno(err, errno, what, path);
    if (!S_ISREG(st.st_mode))
        return fail(err, -EINVAL, "%s %s is not a regular file", what, path);
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return fail(err, -EPERM,
                    "%s %s is owned by uid %u: s3cfs (uid %u) reads only its own or root's "
                    "files; chown it",
                    what, path, (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & forbidden)
        return fail(err, -EPERM, "%s %s is %s by others (mode %04o); chmod 600 it", what, path,
                    (st.st_mode & (S_IRGRP | S_IROTH)) ? "readable" : "accessible",
                    (unsigned)(st.st_mode & 07777));
    if (st.st_size > CREDS_FILE_MAX)
        return fail(err, -EINVAL, "%s %s is larger than %d bytes", what, path, CREDS_FILE_MAX);
    return 0;
}

static int read_all(int fd, const char *what, const char *path, struct sbuf *out,
                    struct s3_error *err)
{
    for (;;) {
        if (sbuf_reserve(out, 4096) < 0)
            return fail(err, -ENOMEM, "%s %s: out of memory", what, path);
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno(err, errno, what, path);
        if (n == 0)
            break;
        out->len += (size_t)n;
        if (out->len > CREDS_FILE_MAX) /* it grew after the fstat() */
            return fail(err, -EINVAL, "%s %s is larger than %d bytes", what, path, CREDS_FILE_MAX);
    }
    out->data[out->len] = '\0';
    return 0;
}

/* Returns 0 with the whole text in *out (a secret buffer), 1 when the file
 * does not exist and is not REQUIRED, or a negative errno with err set. */
static int read_cred_file(const char *what, const char *path, bool required, mode_t forbidden,
                          struct sbuf *out, struct s3_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT && !required)
            return 1;
        if (errno == ELOOP)
            return fail(err, -EPERM, "%s %s is a symbolic link: name the file itself", what, path);
        return fail_errno(err, errno, what, path);
    }
    int rc = check_file(fd, what, path, forbidden, err);
    if (rc == 0)
        rc = read_all(fd, what, path, out, err);
    close(fd);
    return rc;
}

/* Splits "ACCESS:SECRET" or "BUCKET:ACCESS:SECRET" in place; returns the
 * field count or -EINVAL. Blanks inside a field are refused for the same
 * reason long keys are. */
static int split_passwd_line(char *line, char *field[3])
{
    int n = 0;
    char *s = line;
    for (;;) {
        if (n == 3)
            return -EINVAL;
        field[n++] = s;
        char *colon = strchr(s, ':');
        if (!colon)
            break;
        *colon = '\0';
        s = colon + 1;
    }
    for (int i = 0; i < n; i++)
        if (*field[i] == '\0' || field[i][strcspn(field[i], " \t")] != '\0')
            return -EINVAL;
    return n == 1 ? -EINVAL : n;
}

struct passwd_scan {
    const char *path;
    const char *bucket;
    struct s3_creds dflt, mine; /* the ACCESS:SECRET line, the matching bucket line */
    bool have_dflt, have_mine;
    struct s3_error *err;
};

static int passwd_line(char *line, unsigned lineno, void *ctx)
{
    struct passwd_scan *ps = ctx;
    char *field[3];
    int n = split_passwd_line(trim(line), field);
    if (n < 0)
        return fail(ps->err, -EINVAL,
                    "passwd file %s line %u: expected ACCESS:SECRET or BUCKET:ACCESS:SECRET",
                    ps->path, lineno);
    if (n == 2 && ps->have_dflt)
        return fail(ps->err, -EINVAL, "passwd file %s line %u: a second ACCESS:SECRET line",
                    ps->path, lineno);
    bool mine = n == 3 && ps->bucket && strcmp(field[0], ps->bucket) == 0;
    bool *have = mine ? &ps->have_mine : &ps->have_dflt;
    if ((n == 3 && !mine) || *have) /* another bucket's line, or not the first of ours */
        return 0;
    if (put_keys(mine ? &ps->mine : &ps->dflt, field[n - 2], field[n - 1], NULL) < 0)
        return fail(ps->err, -EINVAL, "passwd file %s line %u: key too long", ps->path, lineno);
    *have = true;
    return 0;
}

/* The passwd lines of DATA into *out (empty when none fits); NAME names the
 * file in messages. */
static int passwd_parse(const char *data, size_t len, const char *name, const char *bucket,
                        struct s3_creds *out, struct s3_error *err)
{
    struct passwd_scan ps = {.path = name, .bucket = nonempty(bucket), .err = err};
    memset(out, 0, sizeof *out);
    int rc = for_each_line(data, len, name, passwd_line, &ps, err);
    if (rc == 0 && (ps.have_mine || ps.have_dflt))
        *out = ps.have_mine ? ps.mine : ps.dflt;
    explicit_bzero(&ps, sizeof ps);
    return rc;
}

/* The passwd file NAME has no line for BUCKET and no ACCESS:SECRET line. */
static int no_passwd_line(const char *name, const char *bucket, struct s3_error *err)
{
    return fail(err, -ENOENT, "passwd file %s has no ACCESS:SECRET line%s%s", name,
                nonempty(bucket) ? " and none for bucket " : "", nonempty(bucket) ? bucket : "");
}

/* The bucket's own line wins over the default one. A file given explicitly
 * (required) must yield keys; a default location may be absent. */
static int passwd_read(const char *path, const char *bucket, bool required, mode_t forbidden,
                       struct found *f, struct s3_error *err)
{
    struct sbuf text = SBUF_SECRET_INIT;
    int rc = read_cred_file("passwd file", path, required, forbidden, &text, err);
    if (rc == 0)
        rc = passwd_parse(sbuf_str(&text), text.len, path, bucket, &f->creds, err);
    sbuf_free(&text);
    if (rc == 1)
        return 0;
    if (rc == 0 && f->creds.access_key[0])
        snprintf(f->source, sizeof f->source, "passwd file %s", path);
    else if (rc == 0 && required)
        rc = no_passwd_line(path, bucket, err);
    return rc;
}

/* ---- AWS shared credentials / config files ---- */

struct profile_data {
    struct s3_creds c;
    char region[64];
    bool found; /* the profile's section exists */
};

struct ini_scan {
    const char *path;
    const char *profile;
    bool config; /* config file: "[profile NAME]", and "[default]" */
    bool in_section;
    int key_indent; /* indentation of the last key line, -1 after a header */
    struct profile_data *d;
    struct s3_error *err;
};

static bool section_matches(char *sec, const char *profile, bool config)
{
    if (!config || strcmp(sec, "default") == 0)
        return strcmp(sec, profile) == 0;
    if (strncmp(sec, "profile", 7) != 0 || !isspace((unsigned char)sec[7]))
        return false;
    return strcmp(trim(sec + 7), profile) == 0;
}

static int ini_store(struct ini_scan *is, const char *key, const char *val, unsigned lineno)
{
    struct {
        const char *key;
        char *dst;
        size_t size;
    } const fields[] = {
        {"aws_access_key_id", is->d->c.access_key, sizeof is->d->c.access_key},
        {"aws_secret_access_key", is->d->c.secret_key, sizeof is->d->c.secret_key},
        {"aws_session_token", is->d->c.session_token, sizeof is->d->c.session_token},
        {"region", is->d->region, sizeof is->d->region},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (strcasecmp(key, fields[i].key) != 0)
            continue;
        if (!copy_str(fields[i].dst, fields[i].size, val))
            return fail(is->err, -EINVAL, "%s line %u: %s is too long", is->path, lineno, key);
    }
    return 0;
}

static int ini_line(char *line, unsigned lineno, void *ctx)
{
    struct ini_scan *is = ctx;
    /* As in configparser (which the AWS tools use), a line indented deeper
     * than the key above it continues that key's value, like the config
     * file's nested "s3 =" blocks; none of the keys we read is nested. */
    int indent = (int)strspn(line, " \t");
    if (is->key_indent >= 0 && indent > is->key_indent)
        return 0;
    line += indent;
    if (line[0] == '[') {
        is->key_indent = -1;
        char *end = strrchr(line, ']');
        if (!end || end[1] != '\0')
            return fail(is->err, -EINVAL, "%s line %u: malformed section header", is->path, lineno);
        *end = '\0';
        is->in_section = section_matches(trim(line + 1), is->profile, is->config);
        is->d->found |= is->in_section;
        return 0;
    }
    /* Python's configparser, which the AWS tools use, takes '=' or ':'. */
    size_t k = strcspn(line, "=:");
    if (line[k] == '\0')
        return fail(is->err, -EINVAL, "%s line %u: expected key = value", is->path, lineno);
    is->key_indent = indent;
    if (!is->in_section)
        return 0;
    line[k] = '\0';
    return ini_store(is, trim(line), trim(line + k + 1), lineno);
}

/* The lines of a credentials or config file into d; NAME names it. */
static int ini_parse(const char *data, size_t len, const char *name, const char *profile,
                     bool config, struct profile_data *d, struct s3_error *err)
{
    struct ini_scan is = {
        .path = name, .profile = profile, .config = config, .key_indent = -1, .d = d, .err = err};
    return for_each_line(data, len, name, ini_line, &is, err);
}

/* Reads the profile's keys and region from one file; a missing file is an
 * empty one. */
static int ini_read(const char *path, const char *profile, bool config, struct profile_data *d,
                    struct s3_error *err)
{
    if (!path[0])
        return 0;
    struct sbuf text = SBUF_SECRET_INIT;
    int rc = read_cred_file(config ? "AWS config file" : "AWS credentials file", path, false, 0,
                            &text, err);
    if (rc == 0)
        rc = ini_parse(sbuf_str(&text), text.len, path, profile, config, d, err);
    sbuf_free(&text);
    return rc == 1 ? 0 : rc;
}

/* Keys from the credentials file, else from the config file; the same
 * precedence as the AWS CLI. */
static int read_profile(const char *profile, struct profile_data *d, char *where, size_t wsize,
                        struct s3_error *err)
{
    char cred_path[PATH_MAX], conf_path[PATH_MAX];
    int rc = aws_file(cred_path, sizeof cred_path, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
    if (rc == 0)
        rc = aws_file(conf_path, sizeof conf_path, "AWS_CONFIG_FILE", "config");
    if (rc < 0)
        return fail(err, rc, "path of the AWS credentials or config file is too long");
    memset(d, 0, sizeof *d);
    rc = ini_read(cred_path, profile, false, d, err);
    snprintf(where, wsize, "%s", cred_path);
    if (rc == 0 && !d->c.access_key[0] && !d->c.secret_key[0]) {
        bool in_creds = d->found;
        rc = ini_read(conf_path, profile, true, d, err);
        d->found |= in_creds;
        snprintf(where, wsize, "%s or %s", cred_path, conf_path);
    }
    return rc;
}

/* ---- instance metadata (IMDSv2) ---- */

static size_t imds_collect(char *data, size_t size, size_t n, void *ctx)
{
    struct sbuf *b = ctx;
    size_t len = size * n;
    if (b->len + len > IMDS_MAX_BODY || sbuf_append(b, data, len) < 0)
        return 0; /* curl then fails the transfer with CURLE_WRITE_ERROR */
    return len;
}

static size_t imds_no_upload(char *data, size_t size, size_t n, void *ctx)
{
    (void)data, (void)size, (void)n, (void)ctx;
    return 0;
}

static int imds_status_errno(long status)
{
    if (status == 404)
        return -ENOENT;
    if (status == 401 || status == 403)
        return -EACCES;
    return -EIO;
}

/* One request on a fresh easy handle: IMDS is asked a few times in hours, so
 * pooled connections would buy nothing, and our own handle keeps this module
 * independent of the transport. The timeouts are short because off EC2 the
 * address does not answer, and a mount must not hang on it. */
static int imds_call(bool put, const char *endpoint, const char *path, const char *header,
                     struct sbuf *body, struct s3_error *err)
{
    char url[1024];
    if (path_join(url, sizeof url, endpoint, path + 1) < 0)
        return fail(err, -ENAMETOOLONG, "instance metadata endpoint is too long");
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = h ? curl_slist_append(NULL, header) : NULL;
    if (!hdrs) {
        curl_easy_cleanup(h);
        return fail(err, -ENOMEM, "instance metadata: out of memory");
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* link-local: never through a proxy */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, imds_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    if (put) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)0);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, imds_no_upload);
    }
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    explicit_bzero(hdrs->data, strlen(hdrs->data)); /* the IMDS session token */
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);

    err->curl_code = cc;
    err->http_status = (int)status;
    if (cc != CURLE_OK)
        return fail(err, cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH,
                    "instance metadata %s: %s", endpoint, curl_easy_strerror(cc));
    if (status != 200)
        return fail(err, imds_status_errno(status), "instance metadata %s: HTTP %ld for %s",
                    endpoint, status, path);
    err->curl_code = 0;
    err->http_status = 0;
    return 0;
}

/* Role names are [A-Za-z0-9+=,.@_-]; anything else would change the path. */
static bool valid_role(const char *role)
{
    if (!*role)
        return false;
    for (const char *s = role; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("+=,.@_-", *s))
            return false;
    return true;
}

/* Copies the string value of "name" from a flat JSON object into out. The
 * IMDS answer is a handful of known keys with plain string values, so a full
 * parser buys nothing; escapes other than \" \\ \/ are refused, not guessed.
 * Returns 0, -ENOENT (absent) or -EINVAL (not a string, too long). */
static int json_string(const char *json, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    for (const char *q = strchr(json, '"'); q; q = strchr(q + 1, '"')) {
        if (strncmp(q + 1, name, nlen) != 0 || q[1 + nlen] != '"')
            continue;
        const char *v = q + nlen + 2;
        v += strspn(v, " \t\r\n");
        if (*v != ':')
            continue;
        v += 1 + strspn(v + 1, " \t\r\n");
        if (*v++ != '"')
            return -EINVAL;
        size_t n = 0;
        for (; *v != '"'; v++) {
            if (*v == '\\' && (v[1] == '"' || v[1] == '\\' || v[1] == '/'))
                v++;
            else if (*v == '\\' || *v == '\0')
                return -EINVAL;
            if (n + 1 >= size)
                return -EINVAL;
            out[n++] = *v;
        }
        out[n] = '\0';
        return 0;
    }
    return -ENOENT;
}

/* "2026-11-25T12:00:00Z", fractional seconds allowed. */
static int parse_utc(const char *s, time_t *out)
{
    struct tm tm = {0};
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6)
        return -EINVAL;
    const char *rest = s + used;
    if (*rest == '.')
        rest += 1 + strspn(rest + 1, "0123456789");
    if (strcmp(rest, "Z") != 0)
        return -EINVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = timegm(&tm);
    return *out == (time_t)-1 ? -EINVAL : 0;
}

static int imds_parse_keys(const char *json, const char *role, struct s3_creds *c,
                           struct s3_error *err)
{
    char code[64], expiration[64];
    if (json_string(json, "Code", code, sizeof code) == 0 && strcmp(code, "Success") != 0)
        return fail(err, -EIO, "instance metadata: role %s answered Code %s", role, code);
    struct {
        const char *name;
        char *dst;
        size_t size;
    } const fields[] = {
        {"AccessKeyId", c->access_key, sizeof c->access_key},
        {"SecretAccessKey", c->secret_key, sizeof c->secret_key},
        {"Token", c->session_token, sizeof c->session_token},
        {"Expiration", expiration, sizeof expiration},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (json_string(json, fields[i].name, fields[i].dst, fields[i].size) < 0)
            return fail(err, -EIO, "instance metadata: role %s: no usable %s in the answer", role,
                        fields[i].name);
    if (parse_utc(expiration, &c->expires) < 0)
        return fail(err, -EIO, "instance metadata: role %s: bad Expiration \"%s\"", role,
                    expiration);
    return 0;
}

static int imds_token_header(const char *endpoint, struct sbuf *hdr, struct s3_error *err)
{
    struct sbuf body = SBUF_SECRET_INIT; /* the IMDS session token */
    int rc = imds_call(true, endpoint, IMDS_TOKEN_PATH,
                       "X-aws-ec2-metadata-token-ttl-seconds: 21600", &body, err);
    if (rc == 0 && body.len == 0)
        rc = fail(err, -EIO, "instance metadata %s: empty session token", endpoint);
    if (rc == 0 && sbuf_appendf(hdr, "X-aws-ec2-metadata-token: %s", trim(body.data)) < 0)
        rc = fail(err, -ENOMEM, "instance metadata: out of memory");
    sbuf_free(&body);
    return rc;
}

static int imds_role(const char *endpoint, const char *hdr, char *role, size_t size,
                     struct s3_error *err)
{
    struct sbuf body = SBUF_INIT;
    int rc = imds_call(false, endpoint, IMDS_ROLES_PATH, hdr, &body, err);
    if (rc == -ENOENT)
        rc = fail(err, -ENOENT, "instance metadata %s: no IAM role attached to this instance",
                  endpoint);
    if (rc == 0 && body.len == 0)
        rc = fail(err, -ENOENT, "instance metadata %s: no IAM role attached to this instance",
                  endpoint);
    if (rc == 0) {
        /* one role per instance profile; the first line is it */
        char *first = trim(body.data);
        first[strcspn(first, "\r\n")] = '\0';
        if (!valid_role(first) || !copy_str(role, size, first))
            rc = fail(err, -EIO, "instance metadata %s: no usable IAM role name", endpoint);
    }
    sbuf_free(&body);
    return rc;
}

static int imds_keys(const char *endpoint, const char *hdr, const char *role, struct s3_creds *c,
                     struct s3_error *err)
{
    char path[256];
    struct sbuf body = SBUF_SECRET_INIT; /* the role's keys */
    snprintf(path, sizeof path, "%s%s", IMDS_ROLES_PATH, role);
    int rc = imds_call(false, endpoint, path, hdr, &body, err);
    if (rc == -ENOENT)
        rc = fail(err, -ENOENT, "instance metadata %s: role %s has no credentials (HTTP 404)",
                  endpoint, role);
    if (rc == 0)
        rc = imds_parse_keys(sbuf_str(&body), role, c, err);
    sbuf_free(&body);
    return rc;
}

static void imds_endpoint(char *out, size_t size)
{
    const char *v = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    snprintf(out, size, "%s", v ? v : IMDS_DEFAULT);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}

/* PUT a session token, GET the role name, GET the role's keys. */
static int imds_fetch(struct s3_creds *c, struct s3_error *err)
{
    char endpoint[512], role[128];
    struct sbuf hdr = SBUF_SECRET_INIT; /* carries the IMDS session token */
    imds_endpoint(endpoint, sizeof endpoint);
    memset(c, 0, sizeof *c);
    int rc = imds_token_header(endpoint, &hdr, err);
    if (rc == 0)
        rc = imds_role(endpoint, hdr.data, role, sizeof role, err);
    if (rc == 0)
        rc = imds_keys(endpoint, hdr.data, role, c, err);
    if (rc == 0)
        LOGI("instance metadata: keys of role %s (access key id %s), expiring in %lds", role,
             c->access_key, (long)(c->expires - time(NULL)));
    else
        memset(c, 0, sizeof *c);
    sbuf_free(&hdr);
    return rc;
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
    return passwd_read(p->passwd_file, p->bucket, true, S_IRWXG | S_IRWXO, f, err);
}

static int from_env(const struct creds_provider *p, struct found *f, struct s3_error *err)
{
    (void)p;
    const char *access = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");
    /* a session token alone is left over from something else: ignore it */
    if (!access && !secret)
        return 0;
    snprintf(f->source, sizeof f->source, "environment");
    return put_keys_or_fail(f, access, secret, env("AWS_SESSION_TOKEN"),
                            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", err);
}

static int from_profile(const struct creds_provider *p, struct found *f, struct s3_error *err)
{
    const char *name = profile_name(p->profile);
    char where[2 * PATH_MAX + 8];
    struct profile_data d;
    int rc = read_profile(name, &d, where, sizeof where, err);
    if (rc == 0 && !d.found && strcmp(name, "default") != 0)
        rc = fail(err, -ENOENT, "profile %s not found in %s", name, where);
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
    const char *home = env("HOME");
    int rc = 0;
    if (home && path_join(path, sizeof path, home, ".passwd-s3fs") == 0)
        rc = passwd_read(path, p->bucket, false, S_IRWXG | S_IRWXO, f, err);
    if (rc == 0 && !f->creds.access_key[0])
        rc = passwd_read(ETC_PASSWD_FILE, p->bucket, false, S_IRWXO, f, err);
    return rc;
}

static bool imds_disabled(const struct creds_provider *p)
{
    const char *v = env("AWS_EC2_METADATA_DISABLED");
    return p->no_imds || (v && strcasecmp(v, "true") == 0);
}

/* Off EC2 the endpoint does not answer: that is "nothing here", and the
 * reason stays in err->message for the final "no credentials" message. An
 * endpoint that answers but refuses is a real error. */
static int from_imds(const struct creds_provider *p, struct found *f, struct s3_error *err)
{
    if (imds_disabled(p))
        return 0;
    int rc = imds_fetch(&f->creds, err);
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
    return fail(err, -ENOENT, NO_CREDS_MESSAGE "%s%s", why[0] ? "; " : "", why);
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
        return fail(err, -ENOMEM, "out of memory");
    p->cur = f->creds;
    p->from_imds = f->imds;
    p->next_try = 0;
    LOGI("credentials from %s (access key id %s)", f->source, f->creds.access_key);
    return 0;
}

static int dup_opt(char **dst, const char *src)
{
    if (!nonempty(src))
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
        return fail(err, -ENOMEM, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->updated, NULL);
    int rc = copy_options(p, opt);
    if (rc < 0) {
        creds_provider_free(p);
        return fail(err, rc, "out of memory");
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

/* Runs with p->updating set by this thread and the lock released. */
static int refresh(struct creds_provider *p, struct s3_creds *out, struct s3_error *err)
{
    struct s3_creds fresh;
    s3_error_clear(err);
    int rc = imds_fetch(&fresh, err);
    pthread_mutex_lock(&p->lock);
    time_t now = time(NULL);
    if (rc == 0) {
        /* IMDS rotates keys on its own schedule; the same key again means
         * "not yet", and asking on every request would hammer it. */
        if (strcmp(fresh.access_key, p->cur.access_key) == 0)
            p->next_try = now + RETRY_DELAY;
        p->cur = fresh;
    } else {
        p->next_try = now + RETRY_DELAY;
        if (p->cur.expires > now) {
            LOGW("credentials refresh failed (%s); keeping the current ones for %lds", err->message,
                 (long)(p->cur.expires - now));
            rc = 0;
        }
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

int creds_profile_region(const char *profile, char *out, size_t size)
{
    char path[PATH_MAX];
    struct profile_data d;
    struct s3_error err;
    s3_error_clear(&err);
    memset(&d, 0, sizeof d);
    int rc = aws_file(path, sizeof path, "AWS_CONFIG_FILE", "config");
    if (rc == 0)
        rc = ini_read(path, profile_name(profile), true, &d, &err);
    explicit_bzero(&d.c, sizeof d.c); /* only the region is wanted here */
    if (rc < 0 || !d.region[0])
        return -ENOENT;
    return copy_str(out, size, d.region) ? 0 : -ENAMETOOLONG;
}

/* ---- the file parsers on text in memory (tests, fuzzing) ---- */

int creds_parse_passwd(const char *text, size_t len, const char *bucket, struct s3_creds *out,
                       struct s3_error *err)
{
    int rc = passwd_parse(text, len, "(text)", bucket, out, err);
    if (rc == 0 && !out->access_key[0])
        rc = no_passwd_line("(text)", bucket, err);
    return rc;
}

int creds_parse_profile(const char *text, size_t len, const char *profile, bool config,
                        struct s3_creds *out, char *region, size_t region_size,
                        struct s3_error *err)
{
    struct profile_data d;
    memset(&d, 0, sizeof d);
    int rc = ini_parse(text, len, "(text)", profile, config, &d, err);
    if (rc == 0 && !d.found)
        rc = fail(err, -ENOENT, "no profile %s", profile);
    if (rc == 0 && !copy_str(region, region_size, d.region))
        rc = fail(err, -ENAMETOOLONG, "the region of profile %s is too long", profile);
    *out = d.c;
    explicit_bzero(&d, sizeof d);
    return rc;
}
