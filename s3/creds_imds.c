/* creds_imds.c - credentials from EC2 instance metadata (IMDSv2): PUT a
 * session token, GET the role name, GET the role's keys, which expire.
 * The last source of the chain in credentials.c, which also refreshes
 * them (creds_internal.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "creds_internal.h"
#include "s3cfs/buf.h"
#include "s3cfs/log.h"

#define IMDS_DEFAULT    "http://169.254.169.254"
#define IMDS_TOKEN_PATH "/latest/api/token"
#define IMDS_ROLES_PATH "/latest/meta-data/iam/security-credentials/"
#define IMDS_MAX_BODY   65536

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

static void imds_options(CURL *h, const char *url, struct curl_slist *hdrs, bool put,
                         struct sbuf *body)
{
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
}

/* What the transfer's outcome means: err's curl code and HTTP status stay
 * set on failure (from_imds tells "nothing answers" from a refusal). */
static int imds_outcome(CURLcode cc, long status, const char *endpoint, const char *path,
                        struct s3_error *err)
{
    err->curl_code = cc;
    err->http_status = (int)status;
    if (cc != CURLE_OK)
        return creds_fail(err, cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH,
                          "instance metadata %s: %s", endpoint, curl_easy_strerror(cc));
    if (status != 200)
        return creds_fail(err, imds_status_errno(status), "instance metadata %s: HTTP %ld for %s",
                          endpoint, status, path);
    err->curl_code = 0;
    err->http_status = 0;
    return 0;
}

/* The header list carries the IMDS session token: wiped before it is freed. */
static void imds_headers_free(struct curl_slist *hdrs)
{
    if (hdrs)
        explicit_bzero(hdrs->data, strlen(hdrs->data));
    curl_slist_free_all(hdrs);
}

/* One request on a fresh easy handle: IMDS is asked a few times in hours, so
 * pooled connections would buy nothing, and our own handle keeps this module
 * independent of the transport. The timeouts are short because off EC2 the
 * address does not answer, and a mount must not hang on it. */
static int imds_call(bool put, const char *endpoint, const char *path, const char *header,
                     struct sbuf *body, struct s3_error *err)
{
    char url[1024];
    if (creds_path_join(url, sizeof url, endpoint, path + 1) < 0)
        return creds_fail(err, -ENAMETOOLONG, "instance metadata endpoint is too long");
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = h ? curl_slist_append(NULL, header) : NULL;
    int rc = hdrs ? 0 : creds_fail(err, -ENOMEM, "instance metadata: out of memory");
    if (rc == 0) {
        imds_options(h, url, hdrs, put, body);
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        rc = imds_outcome(cc, status, endpoint, path, err);
    }
    imds_headers_free(hdrs);
    curl_easy_cleanup(h);
    return rc;
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
        return creds_fail(err, -EIO, "instance metadata: role %s answered Code %s", role, code);
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
            return creds_fail(err, -EIO, "instance metadata: role %s: no usable %s in the answer",
                              role, fields[i].name);
    if (parse_utc(expiration, &c->expires) < 0)
        return creds_fail(err, -EIO, "instance metadata: role %s: bad Expiration \"%s\"", role,
                          expiration);
    return 0;
}

static int imds_token_header(const char *endpoint, struct sbuf *hdr, struct s3_error *err)
{
    struct sbuf body = SBUF_SECRET_INIT; /* the IMDS session token */
    int rc = imds_call(true, endpoint, IMDS_TOKEN_PATH,
                       "X-aws-ec2-metadata-token-ttl-seconds: 21600", &body, err);
    if (rc == 0 && body.len == 0)
        rc = creds_fail(err, -EIO, "instance metadata %s: empty session token", endpoint);
    if (rc == 0 && sbuf_appendf(hdr, "X-aws-ec2-metadata-token: %s", creds_trim(body.data)) < 0)
        rc = creds_fail(err, -ENOMEM, "instance metadata: out of memory");
    sbuf_free(&body);
    return rc;
}

static int imds_role(const char *endpoint, const char *hdr, char *role, size_t size,
                     struct s3_error *err)
{
    struct sbuf body = SBUF_INIT;
    int rc = imds_call(false, endpoint, IMDS_ROLES_PATH, hdr, &body, err);
    if (rc == -ENOENT)
        rc = creds_fail(err, -ENOENT, "instance metadata %s: no IAM role attached to this instance",
                        endpoint);
    if (rc == 0 && body.len == 0)
        rc = creds_fail(err, -ENOENT, "instance metadata %s: no IAM role attached to this instance",
                        endpoint);
    if (rc == 0) {
        /* one role per instance profile; the first line is it */
        char *first = creds_trim(body.data);
        first[strcspn(first, "\r\n")] = '\0';
        if (!valid_role(first) || !creds_copy_str(role, size, first))
            rc = creds_fail(err, -EIO, "instance metadata %s: no usable IAM role name", endpoint);
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
        rc = creds_fail(err, -ENOENT, "instance metadata %s: role %s has no credentials (HTTP 404)",
                        endpoint, role);
    if (rc == 0)
        rc = imds_parse_keys(sbuf_str(&body), role, c, err);
    sbuf_free(&body);
    return rc;
}

static void imds_endpoint(char *out, size_t size)
{
    const char *v = creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    snprintf(out, size, "%s", v ? v : IMDS_DEFAULT);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}

/* PUT a session token, GET the role name, GET the role's keys. */
int creds_imds_fetch(struct s3_creds *c, struct s3_error *err)
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
