/* creds_file.c - the credentials files: the s3fs passwd files and the AWS
 * shared credentials and config files, read under the rules of
 * credentials.h (no links, owner, mode, size, line length) and parsed in
 * memory (creds_parse_passwd, creds_parse_profile). Sources of the chain
 * in credentials.c, through creds_internal.h.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds_internal.h"
#include "s3cfs/buf.h"
#include "s3cfs/credentials.h"

#define CREDS_FILE_MAX (1 << 20) /* bytes; a credentials file is a few lines */

/* ---- where the files are ---- */

/* AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE, else ~/.aws/<leaf>. The
 * AWS tools expand a leading "~/" in the variables, so we do too. "" when
 * there is no HOME to look in. */
static int aws_file(char *out, size_t size, const char *var, const char *leaf)
{
    const char *v = creds_env(var);
    const char *home = creds_env("HOME");
    out[0] = '\0';
    if (v && strncmp(v, "~/", 2) != 0)
        return creds_copy_str(out, size, v) ? 0 : -ENAMETOOLONG;
    if (!home)
        return 0;
    if (v)
        return creds_path_join(out, size, home, v + 2);
    char rel[64];
    snprintf(rel, sizeof rel, ".aws/%s", leaf);
    return creds_path_join(out, size, home, rel);
}

const char *creds_profile_name(const char *opt_profile)
{
    if (creds_nonempty(opt_profile))
        return opt_profile;
    return creds_env("AWS_PROFILE") ? creds_env("AWS_PROFILE") : "default";
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
            rc = creds_fail(err, -EINVAL, "%s line %u: longer than %d bytes", name, lineno,
                            CREDS_LINE_MAX);
        else if (memchr(data + at, '\0', n))
            rc =
                creds_fail(err, -EINVAL, "%s line %u: a NUL byte (not a text file?)", name, lineno);
        if (rc)
            break;
        memcpy(line, data + at, n);
        line[n] = '\0';
        at += n + 1;
        char *body = creds_trim(line);
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
        return creds_fail_errno(err, errno, what, path);
    if (!S_ISREG(st.st_mode))
        return creds_fail(err, -EINVAL, "%s %s is not a regular file", what, path);
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return creds_fail(err, -EPERM,
                          "%s %s is owned by uid %u: s3cfs (uid %u) reads only its own or root's "
                          "files; chown it",
                          what, path, (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & forbidden)
        return creds_fail(err, -EPERM, "%s %s is %s by others (mode %04o); chmod 600 it", what,
                          path, (st.st_mode & (S_IRGRP | S_IROTH)) ? "readable" : "accessible",
                          (unsigned)(st.st_mode & 07777));
    if (st.st_size > CREDS_FILE_MAX)
        return creds_fail(err, -EINVAL, "%s %s is larger than %d bytes", what, path,
                          CREDS_FILE_MAX);
    return 0;
}

static int read_all(int fd, const char *what, const char *path, struct sbuf *out,
                    struct s3_error *err)
{
    for (;;) {
        if (sbuf_reserve(out, 4096) < 0)
            return creds_fail(err, -ENOMEM, "%s %s: out of memory", what, path);
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return creds_fail_errno(err, errno, what, path);
        if (n == 0)
            break;
        out->len += (size_t)n;
        if (out->len > CREDS_FILE_MAX) /* it grew after the fstat() */
            return creds_fail(err, -EINVAL, "%s %s is larger than %d bytes", what, path,
                              CREDS_FILE_MAX);
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
            return creds_fail(err, -EPERM, "%s %s is a symbolic link: name the file itself", what,
                              path);
        return creds_fail_errno(err, errno, what, path);
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
    int n = split_passwd_line(creds_trim(line), field);
    if (n < 0)
        return creds_fail(ps->err, -EINVAL,
                          "passwd file %s line %u: expected ACCESS:SECRET or BUCKET:ACCESS:SECRET",
                          ps->path, lineno);
    if (n == 2 && ps->have_dflt)
        return creds_fail(ps->err, -EINVAL, "passwd file %s line %u: a second ACCESS:SECRET line",
                          ps->path, lineno);
    bool mine = n == 3 && ps->bucket && strcmp(field[0], ps->bucket) == 0;
    bool *have = mine ? &ps->have_mine : &ps->have_dflt;
    if ((n == 3 && !mine) || *have) /* another bucket's line, or not the first of ours */
        return 0;
    if (creds_put_keys(mine ? &ps->mine : &ps->dflt, field[n - 2], field[n - 1], NULL) < 0)
        return creds_fail(ps->err, -EINVAL, "passwd file %s line %u: key too long", ps->path,
                          lineno);
    *have = true;
    return 0;
}

/* The passwd lines of DATA into *out (empty when none fits); NAME names the
 * file in messages. */
static int passwd_parse(const char *data, size_t len, const char *name, const char *bucket,
                        struct s3_creds *out, struct s3_error *err)
{
    struct passwd_scan ps = {.path = name, .bucket = creds_nonempty(bucket), .err = err};
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
    return creds_fail(err, -ENOENT, "passwd file %s has no ACCESS:SECRET line%s%s", name,
                      creds_nonempty(bucket) ? " and none for bucket " : "",
                      creds_nonempty(bucket) ? bucket : "");
}

/* The bucket's own line wins over the default one. A file given explicitly
 * (required) must yield keys; a default location may be absent. */
int creds_passwd_read(const char *path, const char *bucket, bool required, mode_t forbidden,
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

struct ini_scan {
    const char *path;
    const char *profile;
    bool config; /* config file: "[profile NAME]", and "[default]" */
    bool in_section;
    int key_indent; /* indentation of the last key line, -1 after a header */
    struct creds_profile *d;
    struct s3_error *err;
};

static bool section_matches(char *sec, const char *profile, bool config)
{
    if (!config || strcmp(sec, "default") == 0)
        return strcmp(sec, profile) == 0;
    if (strncmp(sec, "profile", 7) != 0 || !isspace((unsigned char)sec[7]))
        return false;
    return strcmp(creds_trim(sec + 7), profile) == 0;
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
        if (!creds_copy_str(fields[i].dst, fields[i].size, val))
            return creds_fail(is->err, -EINVAL, "%s line %u: %s is too long", is->path, lineno,
                              key);
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
            return creds_fail(is->err, -EINVAL, "%s line %u: malformed section header", is->path,
                              lineno);
        *end = '\0';
        is->in_section = section_matches(creds_trim(line + 1), is->profile, is->config);
        is->d->found |= is->in_section;
        return 0;
    }
    /* Python's configparser, which the AWS tools use, takes '=' or ':'. */
    size_t k = strcspn(line, "=:");
    if (line[k] == '\0')
        return creds_fail(is->err, -EINVAL, "%s line %u: expected key = value", is->path, lineno);
    is->key_indent = indent;
    if (!is->in_section)
        return 0;
    line[k] = '\0';
    return ini_store(is, creds_trim(line), creds_trim(line + k + 1), lineno);
}

/* The lines of a credentials or config file into d; NAME names it. */
static int ini_parse(const char *data, size_t len, const char *name, const char *profile,
                     bool config, struct creds_profile *d, struct s3_error *err)
{
    struct ini_scan is = {
        .path = name, .profile = profile, .config = config, .key_indent = -1, .d = d, .err = err};
    return for_each_line(data, len, name, ini_line, &is, err);
}

/* Reads the profile's keys and region from one file; a missing file is an
 * empty one. */
static int ini_read(const char *path, const char *profile, bool config, struct creds_profile *d,
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
int creds_read_profile(const char *profile, struct creds_profile *d, char *where, size_t wsize,
                       struct s3_error *err)
{
    char cred_path[PATH_MAX], conf_path[PATH_MAX];
    int rc = aws_file(cred_path, sizeof cred_path, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
    if (rc == 0)
        rc = aws_file(conf_path, sizeof conf_path, "AWS_CONFIG_FILE", "config");
    if (rc < 0)
        return creds_fail(err, rc, "path of the AWS credentials or config file is too long");
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

int creds_profile_region(const char *profile, char *out, size_t size)
{
    char path[PATH_MAX];
    struct creds_profile d;
    struct s3_error err;
    s3_error_clear(&err);
    memset(&d, 0, sizeof d);
    int rc = aws_file(path, sizeof path, "AWS_CONFIG_FILE", "config");
    if (rc == 0)
        rc = ini_read(path, creds_profile_name(profile), true, &d, &err);
    explicit_bzero(&d.c, sizeof d.c); /* only the region is wanted here */
    if (rc < 0 || !d.region[0])
        return -ENOENT;
    return creds_copy_str(out, size, d.region) ? 0 : -ENAMETOOLONG;
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
    struct creds_profile d;
    memset(&d, 0, sizeof d);
    int rc = ini_parse(text, len, "(text)", profile, config, &d, err);
    if (rc == 0 && !d.found)
        rc = creds_fail(err, -ENOENT, "no profile %s", profile);
    if (rc == 0 && !creds_copy_str(region, region_size, d.region))
        rc = creds_fail(err, -ENAMETOOLONG, "the region of profile %s is too long", profile);
    *out = d.c;
    explicit_bzero(&d, sizeof d);
    return rc;
}
