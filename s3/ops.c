/* The S3 operations of s3.h, each a thin description of one request. */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "s3cfs/log.h"
#include "request.h"
#include "xml.h"

#define XML_MAX (16 * 1024 * 1024)

/* Run a request whose 2xx body is XML, into buf. */
static int send_xml(struct s3_client *c, struct s3_req *r, struct sbuf *buf,
                    struct http_response *resp, struct s3_error *err)
{
    r->sink = (struct http_sink){.buf = buf, .max = XML_MAX};
    return s3_send(c, r, resp, err);
}

/* Run a request whose answer we only need the headers of. */
static int send_plain(struct s3_client *c, struct s3_req *r, char etag_out[80],
                      struct s3_error *err)
{
    struct http_response resp;
    http_response_init(&resp);
    int rc = s3_send(c, r, &resp, err);
    if (rc == 0 && etag_out)
        snprintf(etag_out, 80, "%s", resp.etag);
    http_response_free(&resp);
    return rc;
}

static int bad_xml(struct s3_error *err, const char *what)
{
    s3_error_set(err, "BadResponse", what);
    return -EPROTO;
}

/* ---- service and buckets ---- */

int s3_list_buckets(struct s3_client *c, struct s3_bucket **out, size_t *n, struct s3_error *err)
{
    struct s3_req r = {.method = "GET"};
    struct sbuf buf = SBUF_INIT;
    struct http_response resp;
    http_response_init(&resp);
    int rc = send_xml(c, &r, &buf, &resp, err);
    if (rc == 0 && xml_parse_list_buckets(buf.data, buf.len, out, n))
        rc = bad_xml(err, "unreadable ListAllMyBucketsResult");
    http_response_free(&resp);
    sbuf_free(&buf);
    return rc;
}

int s3_head_bucket(struct s3_client *c, const char *bucket, struct s3_error *err)
{
    struct s3_req r = {.method = "HEAD", .bucket = bucket, .head = true};
    int rc = send_plain(c, &r, NULL, err);
    if (rc == -ENOENT)
        s3_error_set(err, "NoSuchBucket", "The specified bucket does not exist");
    return rc;
}

int s3_create_bucket(struct s3_client *c, const char *bucket, struct s3_error *err)
{
    struct s3_req r = {.method = "PUT", .bucket = bucket};
    return send_plain(c, &r, NULL, err);
}

int s3_delete_bucket(struct s3_client *c, const char *bucket, struct s3_error *err)
{
    struct s3_req r = {.method = "DELETE", .bucket = bucket};
    return send_plain(c, &r, NULL, err);
}

/* ---- listing ---- */

int s3_list_objects(struct s3_client *c, const char *bucket, const char *prefix,
                    const char *delimiter, const char *token, int max_keys,
                    struct s3_list_page *out, struct s3_error *err)
{
    char mk[16];
    struct query_param q[6];
    size_t nq = 0;
    q[nq++] = (struct query_param){"list-type", "2"};
    q[nq++] = (struct query_param){"encoding-type", "url"};
    if (prefix && *prefix)
        q[nq++] = (struct query_param){"prefix", prefix};
    if (delimiter && *delimiter)
        q[nq++] = (struct query_param){"delimiter", delimiter};
    if (token && *token)
        q[nq++] = (struct query_param){"continuation-token", token};
    if (max_keys > 0) {
        snprintf(mk, sizeof mk, "%d", max_keys);
        q[nq++] = (struct query_param){"max-keys", mk};
    }
    struct s3_req r = {.method = "GET", .bucket = bucket, .query = q, .nquery = nq};
    struct sbuf buf = SBUF_INIT;
    struct http_response resp;
    http_response_init(&resp);
    int rc = send_xml(c, &r, &buf, &resp, err);
    if (rc == 0 && xml_parse_list_objects(buf.data, buf.len, out))
        rc = bad_xml(err, "unreadable ListBucketResult");
    if (rc == 0 && (rc = s3_list_page_check(out, prefix, err)))
        s3_list_page_free(out);
    http_response_free(&resp);
    sbuf_free(&buf);
    return rc;
}

/* ---- objects ---- */

/* "Wed, 12 Oct 2009 17:50:00 GMT" */
static void parse_http_date(const char *s, struct timespec *ts)
{
    struct tm tm = {0};
    ts->tv_sec = 0;
    ts->tv_nsec = 0;
    if (strptime(s, "%a, %d %b %Y %H:%M:%S", &tm))
        ts->tv_sec = timegm(&tm);
}

/* A HeadObject answer into out, which takes its metadata over. */
static void head_from_answer(struct http_response *resp, struct s3_head *out)
{
    out->size = (uint64_t)resp->content_length;
    snprintf(out->etag, sizeof out->etag, "%s", resp->etag);
    snprintf(out->content_type, sizeof out->content_type, "%s", resp->content_type);
    parse_http_date(resp->last_modified, &out->mtime);
    out->meta = resp->meta; /* hand the metadata over */
    out->nmeta = resp->nmeta;
    out->headers = resp->object_headers;
    out->nheaders = resp->nobject_headers;
    resp->meta = NULL;
    resp->nmeta = 0;
    resp->object_headers = NULL;
    resp->nobject_headers = 0;
    const char *tags = s3_head_header(out, "x-amz-tagging-count");
    out->tag_count = tags ? strtoul(tags, NULL, 10) : 0;
}

int s3_head_object(struct s3_client *c, const char *bucket, const char *key, struct s3_head *out,
                   struct s3_error *err)
{
    struct s3_req r = {.method = "HEAD", .bucket = bucket, .key = key, .head = true};
    struct http_response resp;
    http_response_init(&resp);
    int rc = s3_send(c, &r, &resp, err);
    memset(out, 0, sizeof *out);
    if (rc == 0 && resp.content_length < 0) {
        /* the size is the answer: without it the object is unknown, not empty */
        s3_error_set(err, "BadResponse", "HEAD answer without a Content-Length");
        rc = -EPROTO;
    }
    if (rc == 0)
        head_from_answer(&resp, out);
    else if (rc == -ENOENT && err->code[0] == 'N' && strcmp(err->code, "NotFound") == 0)
        s3_error_set(err, "NoSuchKey", "The specified key does not exist.");
    http_response_free(&resp);
    return rc;
}

int s3_get_object(struct s3_client *c, const char *bucket, const char *key, uint64_t offset,
                  size_t len, const char *if_match, char *dst, size_t *got, struct s3_error *err)
{
    char range[64], quoted[96];
    struct http_header h[2];
    size_t nh = 0;
    *got = 0;
    if (len == 0) /* a whole object of the server's choosing: no such API */
        return -EINVAL;
    snprintf(range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, offset, offset + len - 1);
    h[nh++] = (struct http_header){"Range", range};
    if (if_match && *if_match) {
        snprintf(quoted, sizeof quoted, "\"%s\"", if_match);
        h[nh++] = (struct http_header){"If-Match", quoted};
    }
    struct s3_req r = {.method = "GET", .bucket = bucket, .key = key, .headers = h, .nheaders = nh};
    r.sink = (struct http_sink){.dst = dst, .cap = len};
    struct http_response resp;
    http_response_init(&resp);
    int rc = s3_send(c, &r, &resp, err);
    *got = rc == 0 ? (size_t)resp.body_len : 0;
    if (rc == -EINVAL && strcmp(err->code, "InvalidRange") == 0)
        rc = 0; /* reading at or past the end: zero bytes, like read(2) */
    http_response_free(&resp);
    return rc;
}

int s3_get_object_buf(struct s3_client *c, const char *bucket, const char *key, struct sbuf *out,
                      size_t max, struct s3_error *err)
{
    if (max == 0) /* the server would choose how much memory we take */
        return -EINVAL;
    struct s3_req r = {.method = "GET", .bucket = bucket, .key = key};
    r.sink = (struct http_sink){.buf = out, .max = max};
    struct http_response resp;
    http_response_init(&resp);
    int rc = s3_send(c, &r, &resp, err);
    http_response_free(&resp);
    return rc;
}

/* Headers of a write: Content-Type and x-amz-meta-*. names[] holds the
 * "x-amz-meta-NAME" strings and is freed by the caller. */
static int write_headers(const struct s3_write_opts *o, const char *dflt_type,
                         struct http_header *h, size_t *nh, char **names)
{
    const char *type = o && o->content_type ? o->content_type : dflt_type;
    if (type)
        h[(*nh)++] = (struct http_header){"Content-Type", type};
    for (size_t i = 0; o && i < o->nmeta; i++) {
        if (asprintf(&names[i], "x-amz-meta-%s", o->meta[i].name) < 0) {
            names[i] = NULL;
            return -ENOMEM;
        }
        h[(*nh)++] = (struct http_header){names[i], o->meta[i].value};
    }
    for (size_t i = 0; o && i < o->nheaders; i++)
        h[(*nh)++] = (struct http_header){o->headers[i].name, o->headers[i].value};
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

/* Build the header array for a write: the fixed headers first, then the
 * write options. Caller frees *hdrs and *names (free_names). */
static int write_header_set(const struct http_header *fixed, size_t nfixed,
                            const struct s3_write_opts *o, const char *dflt_type,
                            struct http_header **hdrs, size_t *nh, char ***names)
{
    size_t nmeta = o ? o->nmeta : 0;
    *hdrs = calloc(nfixed + nmeta + (o ? o->nheaders : 0) + 1, sizeof **hdrs);
    *names = calloc(nmeta + 1, sizeof **names);
    if (!*hdrs || !*names)
        return -ENOMEM;
    if (nfixed)
        memcpy(*hdrs, fixed, nfixed * sizeof *fixed);
    *nh = nfixed;
    return write_headers(o, dflt_type, *hdrs, nh, *names);
}

static int send_write(struct s3_client *c, struct s3_req *r, const struct http_header *fixed,
                      size_t nfixed, const struct s3_write_opts *o, const char *dflt_type,
                      char etag_out[80], struct s3_error *err)
{
    struct http_header *hdrs = NULL;
    char **names = NULL;
    size_t nh = 0;
    int rc = write_header_set(fixed, nfixed, o, dflt_type, &hdrs, &nh, &names);
    if (rc) {
        s3_error_set(err, "NoMemory", "out of memory");
    } else {
        r->headers = hdrs;
        r->nheaders = nh;
        rc = send_plain(c, r, etag_out, err);
    }
    free(hdrs);
    free_names(names, o ? o->nmeta : 0);
    return rc;
}

static int etag_of(struct s3_client *c, const char *bucket, const char *key, char etag_out[80],
                   struct s3_error *err);

/* A create-only PUT that met 412 may have met itself: an earlier sending
 * landed and its answer was lost (our retry, or libcurl's own silent resend
 * on a kept-alive connection found dead, which attempts does not count).
 * The object is ours when its ETag is the MD5 of the body (a single PUT's
 * ETag, unencrypted); an identical body from another client passes too,
 * which leaves the same bytes. */
static bool put_landed(struct s3_client *c, const char *bucket, const char *key,
                       const struct s3_body *body, int attempts)
{
    char md5[2 * 16 + 1], etag[80];
    struct s3_error e;
    if (s3_body_digest(body, EVP_md5(), md5) || etag_of(c, bucket, key, etag, &e))
        return false;
    bool ours = strcmp(etag, md5) == 0;
    if (ours)
        LOGW("PutObject of %s/%s (If-None-Match) met 412 on attempt %d: the object is the one an "
             "earlier sending stored: done",
             bucket, key, attempts);
    return ours;
}

int s3_put_object(struct s3_client *c, const char *bucket, const char *key,
                  const struct s3_body *body, const struct s3_write_opts *opts, char etag_out[80],
                  struct s3_error *err)
{
    return s3_put_object_cond(c, bucket, key, body, opts, false, etag_out, err);
}

int s3_put_object_cond(struct s3_client *c, const char *bucket, const char *key,
                       const struct s3_body *body, const struct s3_write_opts *opts,
                       bool if_none_match, char etag_out[80], struct s3_error *err)
{
    static const struct s3_body empty = {.fd = -1};
    static const struct http_header create_only = {"If-None-Match", "*"};
    struct s3_req r = {.method = "PUT", .bucket = bucket, .key = key, .body = body ? body : &empty};
    int rc = send_write(c, &r, &create_only, if_none_match ? 1 : 0, opts, "binary/octet-stream",
                        etag_out, err);
    if (rc == -ESTALE && if_none_match && put_landed(c, bucket, key, r.body, err->attempts)) {
        s3_error_clear(err);
        rc = etag_out ? etag_of(c, bucket, key, etag_out, err) : 0;
    }
    return rc;
}

/* x-amz-copy-source: "/bucket/key", key URI-encoded (slashes kept). */
static int copy_source(struct sbuf *out, const char *bucket, const char *key)
{
    int rc = sbuf_append_char(out, '/');
    rc |= uri_encode_str(out, bucket, false);
    rc |= sbuf_append_char(out, '/');
    rc |= uri_encode_str(out, key, true);
    return rc ? -ENOMEM : 0;
}

/* Source headers shared by CopyObject and UploadPartCopy: copy source and
 * the ETag condition (both spellings: radosgw only honours the legacy one). */
static size_t copy_headers(struct s3_client *c, struct http_header *h, const char *src,
                           const char *if_match, enum s3_copy_if spelling, char quoted[96])
{
    size_t n = 0;
    h[n++] = (struct http_header){"x-amz-copy-source", src};
    if (if_match && *if_match) {
        snprintf(quoted, 96, "\"%s\"", if_match);
        if (spelling != S3_COPY_IF_LEGACY)
            h[n++] = (struct http_header){"x-amz-copy-source-if-match", quoted};
        if (spelling == S3_COPY_IF_LEGACY ||
            (spelling == S3_COPY_IF_BOTH && s3_client_legacy_copy_if(c)))
            h[n++] = (struct http_header){"x-amz-copy-if-match", quoted};
    }
    return n;
}

/* Send a copy-like request and read its result document (which may be an
 * <Error> despite the 200). */
static int send_copy(struct s3_client *c, struct s3_req *r, char etag_out[80], struct s3_error *err)
{
    struct sbuf buf = SBUF_INIT;
    struct http_response resp;
    http_response_init(&resp);
    r->error_in_200 = true;
    int rc = send_xml(c, r, &buf, &resp, err);
    if (rc == 0) {
        char etag[80] = "";
        struct timespec mt;
        struct s3_error e;
        s3_error_clear(&e);
        int prc = xml_parse_copy_result(buf.data, buf.len, etag, &mt, &e);
        if (prc < 0) {
            rc = bad_xml(err, "unreadable copy result");
        } else if (prc == 1) { /* judge() catches this first; kept as a guard */
            *err = e;
            rc = s3_errno_for(e.code, 200);
        } else if (etag_out)
            snprintf(etag_out, 80, "%s", etag);
    }
    http_response_free(&resp);
    sbuf_free(&buf);
    return rc;
}

/* The headers of a CopyObject before the replacement's into fixed[] (room
 * for 6 + opts->nheaders); returns their count. */
static size_t copy_object_headers(struct s3_client *c, const struct s3_copy_opts *opts,
                                  const char *src, char quoted[96], struct http_header *fixed)
{
    size_t n = copy_headers(c, fixed, src, opts ? opts->if_match : NULL,
                            opts ? opts->copy_if : S3_COPY_IF_BOTH, quoted);
    const struct s3_write_opts *rep = opts ? opts->replace : NULL;
    fixed[n++] = (struct http_header){"x-amz-metadata-directive", rep ? "REPLACE" : "COPY"};
    if (opts && opts->if_none_match)
        fixed[n++] = (struct http_header){"If-None-Match", "*"};
    if (rep) /* S3's default, but said: the tags are not metadata */
        fixed[n++] = (struct http_header){"x-amz-tagging-directive", "COPY"};
    for (size_t i = 0; opts && i < opts->nheaders; i++)
        fixed[n++] = (struct http_header){opts->headers[i].name, opts->headers[i].value};
    return n;
}

int s3_copy_object(struct s3_client *c, const char *src_bucket, const char *src_key,
                   const char *dst_bucket, const char *dst_key, const struct s3_copy_opts *opts,
                   char etag_out[80], struct s3_error *err)
{
    struct sbuf src = SBUF_INIT;
    char quoted[96];
    const struct s3_write_opts *rep = opts ? opts->replace : NULL;
    struct http_header *fixed = calloc(6 + (opts ? opts->nheaders : 0), sizeof *fixed);
    struct http_header *hdrs = NULL;
    char **names = NULL;
    size_t nh = 0;
    int rc = fixed ? copy_source(&src, src_bucket, src_key) : -ENOMEM;
    if (rc == 0) {
        size_t n = copy_object_headers(c, opts, sbuf_str(&src), quoted, fixed);
        /* the replacement's headers (none for COPY) after the fixed ones */
        rc = write_header_set(fixed, n, rep, NULL, &hdrs, &nh, &names);
    }
    if (rc == 0) {
        struct s3_req r = {
            .method = "PUT", .bucket = dst_bucket, .key = dst_key, .headers = hdrs, .nheaders = nh};
        rc = send_copy(c, &r, etag_out, err);
    } else {
        s3_error_set(err, "NoMemory", "out of memory");
    }
    free(hdrs);
    free_names(names, rep ? rep->nmeta : 0);
    free(fixed);
    sbuf_free(&src);
    return rc;
}

int s3_delete_object(struct s3_client *c, const char *bucket, const char *key, const char *if_match,
                     struct s3_error *err)
{
    char quoted[96];
    struct http_header h = {"If-Match", quoted};
    struct s3_req r = {.method = "DELETE", .bucket = bucket, .key = key};
    if (if_match && *if_match) {
        snprintf(quoted, sizeof quoted, "\"%s\"", if_match);
        r.headers = &h;
        r.nheaders = 1;
    }
    return send_plain(c, &r, NULL, err);
}

static void md5_base64(const void *data, size_t len, char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

/* An XML request body with the Content-MD5 that DeleteObjects and
 * PutObjectTagging require: x->h[] and x->body point into x and xml. */
struct xml_upload {
    char md5[32];
    struct http_header h[2];
    struct s3_body body;
};

static void xml_upload_init(struct xml_upload *x, const struct sbuf *xml, const char *method,
                            const char *bucket, const char *key, const struct query_param *q,
                            struct s3_req *r)
{
    md5_base64(xml->data, xml->len, x->md5);
    x->h[0] = (struct http_header){"Content-MD5", x->md5};
    x->h[1] = (struct http_header){"Content-Type", "application/xml"};
    x->body = (struct s3_body){.data = xml->data, .fd = -1, .len = xml->len};
    *r = (struct s3_req){.method = method,
                         .bucket = bucket,
                         .key = key,
                         .query = q,
                         .nquery = 1,
                         .headers = x->h,
                         .nheaders = 2,
                         .body = &x->body};
}

#define TAGGING_MAX (64 * 1024) /* 10 tags of 128 + 256 characters fit many times */

int s3_get_object_tagging(struct s3_client *c, const char *bucket, const char *key,
                          struct sbuf *xml, struct s3_error *err)
{
    struct query_param q = {"tagging", NULL};
    struct s3_req r = {.method = "GET", .bucket = bucket, .key = key, .query = &q, .nquery = 1};
    struct http_response resp;
    http_response_init(&resp);
    sbuf_reset(xml);
    r.sink = (struct http_sink){.buf = xml, .max = TAGGING_MAX};
    int rc = s3_send(c, &r, &resp, err);
    if (rc == 0 && (xml->len == 0 || !strstr(sbuf_str(xml), "<Tagging")))
        rc = bad_xml(err, "unreadable Tagging document");
    http_response_free(&resp);
    return rc;
}

int s3_put_object_tagging(struct s3_client *c, const char *bucket, const char *key,
                          const struct sbuf *xml, struct s3_error *err)
{
    struct query_param q = {"tagging", NULL};
    struct xml_upload x;
    struct s3_req r;
    xml_upload_init(&x, xml, "PUT", bucket, key, &q, &r);
    return send_plain(c, &r, NULL, err);
}

/* POST ?delete with the document in body; the per-key errors into *errors. */
static int send_delete(struct s3_client *c, const char *bucket, const struct sbuf *body,
                       struct s3_delete_error **errors, size_t *nerrors, struct s3_error *err)
{
    struct query_param q = {"delete", NULL};
    struct xml_upload x;
    struct s3_req r;
    xml_upload_init(&x, body, "POST", bucket, NULL, &q, &r);
    struct sbuf buf = SBUF_INIT;
    struct http_response resp;
    http_response_init(&resp);
    int rc = send_xml(c, &r, &buf, &resp, err);
    size_t ndeleted = 0;
    if (rc == 0 && xml_parse_delete_result(buf.data, buf.len, &ndeleted, errors, nerrors))
        rc = bad_xml(err, "unreadable DeleteResult");
    http_response_free(&resp);
    sbuf_free(&buf);
    return rc;
}

int s3_delete_objects(struct s3_client *c, const char *bucket, const char *const *keys,
                      const char *const *etags, size_t nkeys, struct s3_delete_error **errors,
                      size_t *nerrors, struct s3_error *err)
{
    struct sbuf body = SBUF_INIT;
    *errors = NULL;
    *nerrors = 0;
    int rc = xml_build_delete_etags(&body, keys, etags, nkeys, true);
    if (rc)
        s3_error_set(err, "InvalidKey", "a key cannot be sent in a DeleteObjects request");
    else
        rc = send_delete(c, bucket, &body, errors, nerrors, err);
    sbuf_free(&body);
    return rc;
}

/* ---- multipart ---- */

int s3_mpu_create(struct s3_client *c, const char *bucket, const char *key,
                  const struct s3_write_opts *opts, char **upload_id, struct s3_error *err)
{
    struct query_param q = {"uploads", NULL};
    struct http_header *hdrs = NULL;
    char **names = NULL;
    size_t nh = 0;
    struct sbuf buf = SBUF_INIT;
    struct http_response resp;
    http_response_init(&resp);
    int rc = write_header_set(NULL, 0, opts, "binary/octet-stream", &hdrs, &nh, &names);
    struct s3_req r = {.method = "POST",
                       .bucket = bucket,
                       .key = key,
                       .query = &q,
                       .nquery = 1,
                       .headers = hdrs,
                       .nheaders = nh};
    if (rc == 0)
        rc = send_xml(c, &r, &buf, &resp, err);
    if (rc == 0 && xml_parse_initiate_multipart(buf.data, buf.len, upload_id))
        rc = bad_xml(err, "unreadable InitiateMultipartUploadResult");
    free(hdrs);
    free_names(names, opts ? opts->nmeta : 0);
    http_response_free(&resp);
    sbuf_free(&buf);
    return rc;
}

static void part_query(struct query_param q[2], char num[16], int part, const char *upload_id)
{
    snprintf(num, 16, "%d", part);
    q[0] = (struct query_param){"partNumber", num};
    q[1] = (struct query_param){"uploadId", upload_id};
}

int s3_mpu_upload_part(struct s3_client *c, const char *bucket, const char *key,
                       const char *upload_id, int part, const struct s3_body *body,
                       char etag_out[80], struct s3_error *err)
{
    char num[16];
    struct query_param q[2];
    part_query(q, num, part, upload_id);
    struct s3_req r = {
        .method = "PUT", .bucket = bucket, .key = key, .query = q, .nquery = 2, .body = body};
    return send_plain(c, &r, etag_out, err);
}

int s3_mpu_copy_part(struct s3_client *c, const char *bucket, const char *key,
                     const char *upload_id, int part, const char *src_bucket, const char *src_key,
                     uint64_t first, uint64_t last, const char *if_match, char etag_out[80],
                     struct s3_error *err)
{
    char num[16], range[64], quoted[96];
    struct query_param q[2];
    part_query(q, num, part, upload_id);
    struct sbuf src = SBUF_INIT;
    int rc = copy_source(&src, src_bucket, src_key);
    if (rc == 0) {
        struct http_header h[4];
        size_t n = copy_headers(c, h, sbuf_str(&src), if_match, S3_COPY_IF_BOTH, quoted);
        snprintf(range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, first, last);
        h[n++] = (struct http_header){"x-amz-copy-source-range", range};
        struct s3_req r = {.method = "PUT",
                           .bucket = bucket,
                           .key = key,
                           .query = q,
                           .nquery = 2,
                           .headers = h,
                           .nheaders = n};
        rc = send_copy(c, &r, etag_out, err);
    } else {
        s3_error_set(err, "NoMemory", "out of memory");
    }
    sbuf_free(&src);
    return rc;
}

static int etag_of(struct s3_client *c, const char *bucket, const char *key, char etag_out[80],
                   struct s3_error *err)
{
    struct s3_head h;
    int rc = s3_head_object(c, bucket, key, &h, err);
    if (rc == 0)
        snprintf(etag_out, 80, "%s", h.etag);
    s3_head_free(&h);
    return rc;
}

/* A retried CompleteMultipartUpload that finds the upload gone: an earlier
 * attempt completed it and its answer was lost. Accept when the object now
 * carries a multipart ETag of the same part count ("...-N"). */
static int complete_landed(struct s3_client *c, const char *bucket, const char *key, size_t nparts,
                           char etag_out[80], struct s3_error *err)
{
    struct s3_head h;
    struct s3_error e2;
    char suffix[16];
    snprintf(suffix, sizeof suffix, "-%zu", nparts);
    if (s3_head_object(c, bucket, key, &h, &e2))
        return -ENOENT;
    size_t el = strlen(h.etag), sl = strlen(suffix);
    bool ours = el > sl && strcmp(h.etag + el - sl, suffix) == 0;
    if (ours && etag_out)
        snprintf(etag_out, 80, "%s", h.etag);
    s3_head_free(&h);
    LOGW("CompleteMultipartUpload of %s/%s: upload gone on retry, object %s", bucket, key,
         ours ? "present: the lost answer was a success" : "not ours");
    if (!ours)
        return -ENOENT;
    s3_error_clear(err);
    return 0;
}

/* The ETag of a completed upload from its result document in buf. */
static int complete_result(struct s3_client *c, const char *bucket, const char *key,
                           const struct sbuf *buf, char etag_out[80], struct s3_error *err)
{
    char etag[80] = "";
    struct s3_error e;
    s3_error_clear(&e);
    if (xml_parse_complete_multipart(buf->data, buf->len, etag, &e) < 0)
        return bad_xml(err, "unreadable CompleteMultipartUploadResult");
    if (etag_out && etag[0])
        snprintf(etag_out, 80, "%s", etag);
    else if (etag_out) /* radosgw answers without an ETag: ask for it */
        return etag_of(c, bucket, key, etag_out, err);
    return 0;
}

/* POST ?uploadId with the part list in body. */
static int send_complete(struct s3_client *c, const char *bucket, const char *key,
                         const char *upload_id, const struct sbuf *body, size_t nparts,
                         bool if_none_match, char etag_out[80], struct s3_error *err)
{
    struct query_param q = {"uploadId", upload_id};
    struct http_header h[2] = {{"Content-Type", "application/xml"}, {"If-None-Match", "*"}};
    struct s3_body b = {.data = body->data, .fd = -1, .len = body->len};
    struct s3_req r = {.method = "POST",
                       .bucket = bucket,
                       .key = key,
                       .query = &q,
                       .nquery = 1,
                       .headers = h,
                       .nheaders = if_none_match ? 2 : 1,
                       .body = &b,
                       .error_in_200 = true};
    struct sbuf buf = SBUF_INIT;
    struct http_response resp;
    http_response_init(&resp);
    int rc = send_xml(c, &r, &buf, &resp, err);
    if (rc == 0)
        rc = complete_result(c, bucket, key, &buf, etag_out, err);
    else if (rc == -ENOENT && err->attempts > 1)
        rc = complete_landed(c, bucket, key, nparts, etag_out, err);
    http_response_free(&resp);
    sbuf_free(&buf);
    return rc;
}

int s3_mpu_complete(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
                    const struct s3_part *parts, size_t nparts, bool if_none_match,
                    char etag_out[80], struct s3_error *err)
{
    struct sbuf body = SBUF_INIT;
    int rc = xml_build_complete_multipart(&body, parts, nparts);
    if (rc)
        s3_error_set(err, "InvalidPart", "could not build CompleteMultipartUpload (part list)");
    else
        rc = send_complete(c, bucket, key, upload_id, &body, nparts, if_none_match, etag_out, err);
    sbuf_free(&body);
    return rc;
}

int s3_mpu_abort(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
                 struct s3_error *err)
{
    struct query_param q = {"uploadId", upload_id};
    struct s3_req r = {.method = "DELETE", .bucket = bucket, .key = key, .query = &q, .nquery = 1};
    return send_plain(c, &r, NULL, err);
}
