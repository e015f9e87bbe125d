/* Unit tests for SigV4: the AWS test-suite vectors in tests/data/sigv4, the
 * S3 documentation examples, header ordering S3 copies depend on, what a
 * client signs (the payload hash of a body in memory or in a file, the
 * endpoint its Host comes from) and the signing-key cache under
 * concurrency. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <unistd.h>

#include "request.h"
#include "s3cfs/buf.h"
#include "s3cfs/s3.h"
#include "sigv4.h"
#include "s3cfs/uri.h"

#define VECTOR_DIR TEST_DATA_DIR "/sigv4"
/* Every case copied into tests/data/sigv4 (see its README): a folder that
 * goes missing must fail the test, not shrink it silently. */
#define VECTOR_CASES 32
#define MAX_HEADERS  16
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The credentials used by every example in the S3 documentation. */
static const struct sigv4_credentials doc_cred = {"AKIAIOSFODNN7EXAMPLE",
                                                  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};
#define DOC_HOST "examplebucket.s3.amazonaws.com"
#define DOC_TIME ((time_t)1369353600) /* 2013-05-24T00:00:00Z */

/* ---- reading a vector ---------------------------------------------------- */

static int slurp(const char *dir, const char *name, struct sbuf *out)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char chunk[4096];
    size_t n;
    int rc = sbuf_append(out, "", 0);
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = sbuf_append(out, chunk, n);
    fclose(f);
    return rc;
}

/* The request of one case, pointing into its own copy of request.txt. */
struct vector_req {
    char *text; /* request.txt, cut up in place */
    const char *method;
    const char *path;  /* as written: raw or already encoded */
    const char *query; /* after '?', or "" */
    struct http_header headers[MAX_HEADERS];
    size_t nheaders;
    const char *body;
    struct sbuf values; /* header values with their continuation lines */
};

/* "METHOD /target HTTP/1.1": the target may contain spaces (get-space). */
static int parse_request_line(struct vector_req *r, char *line)
{
    char *sp = strchr(line, ' ');
    char *proto = strstr(line, " HTTP/");
    if (!sp || !proto || proto < sp)
        return -EINVAL;
    *sp = '\0';
    *proto = '\0';
    r->method = line;
    r->path = sp + 1;
    char *q = strchr(sp + 1, '?');
    r->query = "";
    if (q) {
        *q = '\0';
        r->query = q + 1;
    }
    return 0;
}

/* Header values are gathered in r->values as NUL-terminated strings whose
 * offsets are fixed up once the buffer stops moving. */
static int parse_headers(struct vector_req *r, char **cursor, size_t offsets[])
{
    char *line;
    while ((line = strsep(cursor, "\n")) && line[0]) {
        if (line[0] == ' ' || line[0] == '\t') {
            /* a folded continuation: keep the line break for the signer */
            if (r->nheaders == 0)
                return -EINVAL;
            r->values.len--; /* reopen the previous value */
            if (sbuf_appendf(&r->values, "\n%s", line) || sbuf_append_char(&r->values, '\0'))
                return -ENOMEM;
            continue;
        }
        char *colon = strchr(line, ':');
        if (!colon || r->nheaders == MAX_HEADERS)
            return -EINVAL;
        *colon = '\0';
        r->headers[r->nheaders].name = line;
        offsets[r->nheaders++] = r->values.len;
        if (sbuf_append_str(&r->values, colon + 1) || sbuf_append_char(&r->values, '\0'))
            return -ENOMEM;
    }
    return 0;
}

static int parse_request(const char *dir, struct vector_req *r)
{
    struct sbuf text = SBUF_INIT;
    size_t offsets[MAX_HEADERS];
    memset(r, 0, sizeof *r);
    int rc = slurp(dir, "request.txt", &text);
    if (rc)
        return rc;
    r->text = sbuf_detach(&text);
    char *cursor = r->text;
    char *line = strsep(&cursor, "\n");
    rc = parse_request_line(r, line);
    if (rc == 0)
        rc = parse_headers(r, &cursor, offsets);
    for (size_t i = 0; rc == 0 && i < r->nheaders; i++)
        r->headers[i].value = r->values.data + offsets[i];
    r->body = cursor ? cursor : "";
    return rc;
}

static void free_request(struct vector_req *r)
{
    free(r->text);
    sbuf_free(&r->values);
}

/* The context of one case: a few fields picked out of context.json. */
struct vector_ctx {
    char access_key[64];
    char secret_key[128];
    char token[512];
    char region[32];
    char service[32];
    bool sign_body;
    bool omit_session_token;
    time_t now;
};

/* The value after "key": a string (escapes reduced to the escaped char) or
 * a bare literal such as true. Returns false when the key is absent. */
static bool json_field(const char *json, const char *key, char *out, size_t size)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *p = strstr(json, pattern);
    if (!p)
        return false;
    p += strlen(pattern);
    p += strspn(p, " \t\r\n");
    if (*p++ != ':')
        return false;
    p += strspn(p, " \t\r\n");
    bool quoted = *p == '"';
    p += quoted;
    size_t n = 0;
    for (; *p && n + 1 < size; p++) {
        if (quoted ? *p == '"' : strchr(",} \t\r\n", *p) != NULL)
            break;
        if (quoted && *p == '\\' && p[1])
            p++;
        out[n++] = *p;
    }
    out[n] = '\0';
    return true;
}

static bool json_true(const char *json, const char *key)
{
    char v[8];
    return json_field(json, key, v, sizeof v) && strcmp(v, "true") == 0;
}

static int parse_context(const char *dir, struct vector_ctx *c)
{
    struct sbuf json = SBUF_INIT;
    memset(c, 0, sizeof *c);
    int rc = slurp(dir, "context.json", &json);
    const char *j = sbuf_str(&json);
    char ts[32];
    struct tm tm = {0};
    if (rc == 0 && (!json_field(j, "access_key_id", c->access_key, sizeof c->access_key) ||
                    !json_field(j, "secret_access_key", c->secret_key, sizeof c->secret_key) ||
                    !json_field(j, "region", c->region, sizeof c->region) ||
                    !json_field(j, "service", c->service, sizeof c->service) ||
                    !json_field(j, "timestamp", ts, sizeof ts)))
        rc = -EINVAL;
    if (rc == 0 && sscanf(ts, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                          &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        rc = -EINVAL;
    if (rc == 0) {
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        c->now = timegm(&tm);
        json_field(j, "token", c->token, sizeof c->token);
        c->sign_body = json_true(j, "sign_body");
        c->omit_session_token = json_true(j, "omit_session_token");
    }
    sbuf_free(&json);
    return rc;
}

/* ---- turning a vector into a sigv4_request -------------------------------- */

/* The vectors write some paths raw ("/example space/", UTF-8) and would
 * write others encoded: decoding first and encoding once gives the S3 form
 * for both. */
static int vector_path(const char *raw, struct sbuf *out)
{
    struct sbuf plain = SBUF_INIT;
    int rc = uri_decode(&plain, raw, strlen(raw), false);
    if (rc == 0)
        rc = uri_encode(out, plain.data, plain.len, true);
    sbuf_free(&plain);
    return rc;
}

/* Split "a=1&b" into decoded parameters (stored in names, NUL-separated),
 * then let uri_canonical_query encode and sort them. */
static int vector_query(const char *raw, struct sbuf *out)
{
    struct query_param params[MAX_HEADERS];
    size_t offs[MAX_HEADERS][2], n = 0;
    bool has_value[MAX_HEADERS];
    struct sbuf store = SBUF_INIT;
    int rc = 0;
    for (const char *p = raw; rc == 0 && *p && n < MAX_HEADERS; n++) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq ? (size_t)(eq - p) : len;
        has_value[n] = eq != NULL;
        offs[n][0] = store.len;
        rc = uri_decode(&store, p, nlen, false) || sbuf_append_char(&store, '\0');
        offs[n][1] = store.len;
        if (rc == 0 && eq)
            rc =
                uri_decode(&store, eq + 1, len - nlen - 1, false) || sbuf_append_char(&store, '\0');
        p += len + (p[len] == '&');
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        params[i].name = store.data + offs[i][0];
        params[i].value = has_value[i] ? store.data + offs[i][1] : NULL;
    }
    if (rc == 0)
        rc = uri_canonical_query(out, params, n);
    sbuf_free(&store);
    return rc ? -EINVAL : 0;
}

/* The Authorization value from header-signed-request.txt. */
static bool expected_authorization(const char *dir, struct sbuf *out)
{
    struct sbuf text = SBUF_INIT;
    bool ok = false;
    if (slurp(dir, "header-signed-request.txt", &text) == 0) {
        const char *a = strstr(text.data, "\nAuthorization:");
        if (a) {
            a += strlen("\nAuthorization:");
            ok = sbuf_append(out, a, strcspn(a, "\r\n")) == 0;
        }
    }
    sbuf_free(&text);
    return ok;
}

/* ---- comparing ---------------------------------------------------------- */

static int check_equal(const char *name, const char *what, const char *want, const char *got)
{
    if (strcmp(want, got) == 0)
        return 0;
    print_error("%s: %s differs\n--- expected\n%s\n--- got\n%s\n", name, what, want, got);
    return 1;
}

static int check_file(const char *dir, const char *name, const char *file, const char *got)
{
    struct sbuf want = SBUF_INIT;
    int bad = slurp(dir, file, &want) ? 1 : check_equal(name, file, sbuf_str(&want), got);
    sbuf_free(&want);
    return bad;
}

/* Everything a case needs that must outlive the request struct. */
struct vector_run {
    struct vector_req r;
    struct vector_ctx c;
    struct sbuf path, query;
    char body_hash[65];
    struct http_header headers[MAX_HEADERS + 1];
};

static int prepare_case(const char *dir, struct vector_run *v, struct sigv4_request *req,
                        struct sigv4_credentials *cred)
{
    int rc = parse_request(dir, &v->r);
    if (rc == 0)
        rc = parse_context(dir, &v->c);
    if (rc == 0)
        rc = vector_path(v->r.path, &v->path);
    if (rc == 0)
        rc = vector_query(v->r.query, &v->query);
    if (rc)
        return rc;
    sigv4_sha256_hex(v->r.body, strlen(v->r.body), v->body_hash);
    memcpy(v->headers, v->r.headers, v->r.nheaders * sizeof v->headers[0]);
    size_t n = v->r.nheaders;
    /* sign_body: the body's hash is sent, and signed, as S3 requires */
    if (v->c.sign_body)
        v->headers[n++] = (struct http_header){"x-amz-content-sha256", v->body_hash};
    *req = (struct sigv4_request){
        .method = v->r.method,
        .canonical_uri = sbuf_str(&v->path),
        .canonical_query = sbuf_str(&v->query),
        .headers = v->headers,
        .nheaders = n,
        .payload_hash = v->body_hash,
        .region = v->c.region,
        .service = v->c.service,
        .now = v->c.now,
        .omit_session_token = v->c.omit_session_token,
    };
    *cred = (struct sigv4_credentials){v->c.access_key, v->c.secret_key, v->c.token};
    return 0;
}

/* Returns the number of mismatches (0 = pass). */
static int run_case(const char *name)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", VECTOR_DIR, name);
    struct vector_run v = {.path = SBUF_INIT, .query = SBUF_INIT};
    struct sigv4_request req;
    struct sigv4_credentials cred;
    struct sbuf canon = SBUF_INIT, sts = SBUF_INIT, auth = SBUF_INIT;
    struct sigv4_result res;
    int bad = 0;
    if (prepare_case(dir, &v, &req, &cred) || sigv4_canonical_request(&req, &cred, &canon) ||
        sigv4_string_to_sign(&req, sbuf_str(&canon), &sts) || sigv4_sign(&req, &cred, &res) ||
        !expected_authorization(dir, &auth)) {
        print_error("%s: could not be prepared or signed\n", name);
        bad = 1;
    } else {
        bad += check_file(dir, name, "header-canonical-request.txt", sbuf_str(&canon));
        bad += check_file(dir, name, "header-string-to-sign.txt", sbuf_str(&sts));
        bad += check_file(dir, name, "header-signature.txt", res.signature);
        bad += check_equal(name, "Authorization", sbuf_str(&auth), res.authorization);
        bad += check_equal(name, "X-Amz-Date", "20150830T123600Z", res.amz_date);
    }
    free_request(&v.r);
    sbuf_free(&v.path);
    sbuf_free(&v.query);
    sbuf_free(&canon);
    sbuf_free(&sts);
    sbuf_free(&auth);
    return bad;
}

static bool is_dir(const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", VECTOR_DIR, name);
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_aws_vectors(void **state)
{
    (void)state;
    DIR *d = opendir(VECTOR_DIR);
    assert_non_null(d);
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64)
        if (e->d_name[0] != '.' && is_dir(e->d_name))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], name_cmp);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        failed += run_case(names[i]) != 0;
        free(names[i]);
    }
    assert_int_equal(n, VECTOR_CASES);
    assert_int_equal(failed, 0);
}

/* ---- the S3 documentation examples ------------------------------------- */

static struct sigv4_request doc_request(const char *method, const char *uri, const char *query,
                                        const struct http_header *h, size_t n, const char *hash)
{
    return (struct sigv4_request){
        .method = method,
        .canonical_uri = uri,
        .canonical_query = query,
        .headers = h,
        .nheaders = n,
        .payload_hash = hash,
        .region = "us-east-1",
        .service = "s3",
        .now = DOC_TIME,
    };
}

/* Sign and compare with the documented hash of the canonical request (the
 * last line of the string to sign), signature and signed header list. */
static void check_doc_example(const struct sigv4_request *req, const char *canon_hash,
                              const char *signature, const char *signed_headers)
{
    struct sbuf canon = SBUF_INIT, sts = SBUF_INIT, want = SBUF_INIT;
    struct sigv4_result res;
    assert_int_equal(sigv4_canonical_request(req, &doc_cred, &canon), 0);
    assert_int_equal(sigv4_string_to_sign(req, sbuf_str(&canon), &sts), 0);
    assert_int_equal(sbuf_appendf(&want,
                                  "AWS4-HMAC-SHA256\n20130524T000000Z\n"
                                  "20130524/us-east-1/s3/aws4_request\n%s",
                                  canon_hash),
                     0);
    assert_string_equal(sbuf_str(&sts), sbuf_str(&want));
    assert_int_equal(sigv4_sign(req, &doc_cred, &res), 0);
    assert_string_equal(res.signature, signature);
    assert_string_equal(res.amz_date, "20130524T000000Z");
    sbuf_reset(&want);
    assert_int_equal(sbuf_appendf(&want,
                                  "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
                                  "us-east-1/s3/aws4_request, SignedHeaders=%s, Signature=%s",
                                  signed_headers, signature),
                     0);
    assert_string_equal(res.authorization, sbuf_str(&want));
    sbuf_free(&canon);
    sbuf_free(&sts);
    sbuf_free(&want);
}

static void test_s3_get_object(void **state)
{
    (void)state;
    const struct http_header h[] = {
        {"Host", DOC_HOST}, {"Range", "bytes=0-9"}, {"x-amz-content-sha256", EMPTY_SHA256}};
    struct sigv4_request req = doc_request("GET", "/test.txt", "", h, 3, EMPTY_SHA256);
    struct sbuf canon = SBUF_INIT;
    assert_int_equal(sigv4_canonical_request(&req, &doc_cred, &canon), 0);
    assert_string_equal(sbuf_str(&canon),
                        "GET\n/test.txt\n\n"
                        "host:examplebucket.s3.amazonaws.com\n"
                        "range:bytes=0-9\n"
                        "x-amz-content-sha256:" EMPTY_SHA256 "\n"
                        "x-amz-date:20130524T000000Z\n\n"
                        "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256);
    sbuf_free(&canon);
    check_doc_example(&req, "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
                      "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
                      "host;range;x-amz-content-sha256;x-amz-date");
}

static void test_s3_put_object(void **state)
{
    (void)state;
    static const char body[] = "Welcome to Amazon S3.";
    char hash[65];
    sigv4_sha256_hex(body, strlen(body), hash);
    assert_string_equal(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    /* the key "test$file.text" goes through the project's own encoder */
    struct sbuf uri = SBUF_INIT;
    assert_int_equal(uri_encode_str(&uri, "/test$file.text", true), 0);
    assert_string_equal(sbuf_str(&uri), "/test%24file.text");
    const struct http_header h[] = {{"Host", DOC_HOST},
                                    {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                                    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                                    {"x-amz-content-sha256", hash}};
    struct sigv4_request req = doc_request("PUT", sbuf_str(&uri), "", h, 4, hash);
    check_doc_example(&req, "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
                      "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
                      "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
    sbuf_free(&uri);
}

static void test_s3_get_lifecycle(void **state)
{
    (void)state;
    const struct query_param q[] = {{"lifecycle", NULL}};
    struct sbuf query = SBUF_INIT;
    assert_int_equal(uri_canonical_query(&query, q, 1), 0);
    assert_string_equal(sbuf_str(&query), "lifecycle=");
    const struct http_header h[] = {{"Host", DOC_HOST}, {"x-amz-content-sha256", EMPTY_SHA256}};
    struct sigv4_request req = doc_request("GET", "/", sbuf_str(&query), h, 2, EMPTY_SHA256);
    check_doc_example(&req, "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
                      "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
                      "host;x-amz-content-sha256;x-amz-date");
    sbuf_free(&query);
}

static void test_s3_list_objects(void **state)
{
    (void)state;
    /* given out of order on purpose: the canonical query sorts */
    const struct query_param q[] = {{"prefix", "J"}, {"max-keys", "2"}};
    struct sbuf query = SBUF_INIT;
    assert_int_equal(uri_canonical_query(&query, q, 2), 0);
    assert_string_equal(sbuf_str(&query), "max-keys=2&prefix=J");
    const struct http_header h[] = {{"Host", DOC_HOST}, {"x-amz-content-sha256", EMPTY_SHA256}};
    struct sigv4_request req = doc_request("GET", "/", sbuf_str(&query), h, 2, EMPTY_SHA256);
    check_doc_example(&req, "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
                      "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
                      "host;x-amz-content-sha256;x-amz-date");
    sbuf_free(&query);
}

/* Headers are sorted by name alone. Sorting whole "name:value" lines, as
 * libcurl's built-in signer does, puts "x-amz-copy-source-range:" before
 * "x-amz-copy-source:" (':' sorts after '-') and S3 rejects the copy. */
static void check_copy_order(const struct http_header *h, size_t n, const char *want_lines,
                             const char *want_signed)
{
    struct sigv4_request req = doc_request("PUT", "/dstbucket/b.txt", "", h, n, EMPTY_SHA256);
    struct sbuf canon = SBUF_INIT;
    assert_int_equal(sigv4_canonical_request(&req, &doc_cred, &canon), 0);
    assert_non_null(strstr(sbuf_str(&canon), want_lines));
    const char *signed_line = strrchr(sbuf_str(&canon), '\n');
    assert_non_null(signed_line);
    /* the second-to-last line lists the signed headers */
    char *copy = strndup(sbuf_str(&canon), (size_t)(signed_line - sbuf_str(&canon)));
    assert_string_equal(strrchr(copy, '\n') + 1, want_signed);
    free(copy);
    struct sigv4_result res;
    assert_int_equal(sigv4_sign(&req, &doc_cred, &res), 0);
    assert_non_null(strstr(res.authorization, want_signed));
    sbuf_free(&canon);
}

static void test_copy_headers_sorted(void **state)
{
    (void)state;
    const struct http_header h[] = {
        {"Host", DOC_HOST},
        {"x-amz-copy-source-range", "bytes=0-9"},
        {"x-amz-copy-source", "/srcbucket/a%20b.txt"},
        {"x-amz-copy-if-match", "\"9b2cf535f27731c974343645a3985328\""},
        {"x-amz-content-sha256", EMPTY_SHA256},
    };
    check_copy_order(h, 5,
                     "x-amz-copy-if-match:\"9b2cf535f27731c974343645a3985328\"\n"
                     "x-amz-copy-source:/srcbucket/a%20b.txt\n"
                     "x-amz-copy-source-range:bytes=0-9\n"
                     "x-amz-date:20130524T000000Z\n",
                     "host;x-amz-content-sha256;x-amz-copy-if-match;x-amz-copy-source;"
                     "x-amz-copy-source-range;x-amz-date");
    /* the header S3 actually defines for a conditional copy */
    const struct http_header real[] = {
        {"x-amz-copy-source-if-match", "\"9b2cf535f27731c974343645a3985328\""},
        {"X-Amz-Copy-Source", "/srcbucket/a%20b.txt"},
        {"host", DOC_HOST},
        {"x-amz-content-sha256", EMPTY_SHA256},
    };
    check_copy_order(real, 4,
                     "x-amz-copy-source:/srcbucket/a%20b.txt\n"
                     "x-amz-copy-source-if-match:\"9b2cf535f27731c974343645a3985328\"\n",
                     "host;x-amz-content-sha256;x-amz-copy-source;x-amz-copy-source-if-match;"
                     "x-amz-date");
}

/* ---- contract edges ----------------------------------------------------- */

static void test_rejects_bad_input(void **state)
{
    (void)state;
    struct sigv4_result res;
    const struct http_header no_host[] = {{"x-amz-content-sha256", EMPTY_SHA256}};
    struct sigv4_request req = doc_request("GET", "/", "", no_host, 1, EMPTY_SHA256);
    assert_int_equal(sigv4_sign(&req, &doc_cred, &res), -EINVAL);

    const struct http_header host[] = {{"Host", DOC_HOST}};
    req = doc_request("GET", "/", "", host, 1, EMPTY_SHA256);
    struct sigv4_credentials cred = {"AKID", "", NULL};
    assert_int_equal(sigv4_sign(&req, &cred, &res), -EINVAL);
    cred = (struct sigv4_credentials){NULL, "secret", NULL};
    assert_int_equal(sigv4_sign(&req, &cred, &res), -EINVAL);

    /* x-amz-date belongs to the signer: a second copy would be combined */
    const struct http_header dated[] = {{"Host", DOC_HOST}, {"X-Amz-Date", "20130524T000000Z"}};
    req = doc_request("GET", "/", "", dated, 2, EMPTY_SHA256);
    assert_int_equal(sigv4_sign(&req, &doc_cred, &res), -EINVAL);

    req = doc_request("GET", "/", "", host, 1, NULL);
    assert_int_equal(sigv4_sign(&req, &doc_cred, &res), -EINVAL);
}

static void test_session_token_signed(void **state)
{
    (void)state;
    const struct http_header h[] = {{"Host", DOC_HOST}, {"x-amz-content-sha256", EMPTY_SHA256}};
    struct sigv4_request req = doc_request("GET", "/", "", h, 2, EMPTY_SHA256);
    struct sigv4_credentials cred = doc_cred;
    cred.session_token = "tok en";
    struct sigv4_result res;
    assert_int_equal(sigv4_sign(&req, &cred, &res), 0);
    assert_non_null(
        strstr(res.authorization,
               "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"));
    /* an empty token means none */
    cred.session_token = "";
    assert_int_equal(sigv4_sign(&req, &cred, &res), 0);
    assert_non_null(strstr(res.authorization, "x-amz-date, Signature="));
}

/* ---- what a client signs ------------------------------------------------ */

/* A body read from a file hashes like the same bytes in memory, across the
 * 64 KiB pieces it is read in and from an offset; a file shorter than the
 * body is an error, not a hash of fewer bytes. */
static void test_body_digest(void **state)
{
    (void)state;
    enum { SKIP = 100, LEN = 3 * 65536 + 7 };
    char *data = malloc(SKIP + LEN), want[65], got[65];
    assert_non_null(data);
    for (size_t i = 0; i < SKIP + LEN; i++)
        data[i] = (char)(i * 7 + i / 251);
    char path[] = "/tmp/test_sigv4_body.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, data, SKIP + LEN), SKIP + LEN);
    sigv4_sha256_hex(data + SKIP, LEN, want);

    struct s3_body mem = {.data = data + SKIP, .fd = -1, .len = LEN};
    assert_int_equal(s3_body_digest(&mem, EVP_sha256(), got), 0);
    assert_string_equal(got, want);
    struct s3_body file = {.fd = fd, .offset = SKIP, .len = LEN};
    memset(got, 0, sizeof got);
    assert_int_equal(s3_body_digest(&file, EVP_sha256(), got), 0);
    assert_string_equal(got, want);

    struct s3_body empty = {.fd = -1};
    assert_int_equal(s3_body_digest(&empty, EVP_sha256(), got), 0);
    assert_string_equal(got, EMPTY_SHA256);
    file.len = LEN + 1; /* one byte past the end of the file */
    assert_int_equal(s3_body_digest(&file, EVP_sha256(), got), -EIO);
    file.offset = SKIP + LEN; /* nothing left to read at all */
    file.len = 1;
    assert_int_equal(s3_body_digest(&file, EVP_sha256(), got), -EIO);
    close(fd);
    free(data);
}

/* The endpoint a client is made with, as it spells it back (NULL: refused
 * with that message). */
static const struct {
    const char *url, *endpoint, *message;
} endpoints[] = {
    {"http://127.0.0.1:7480", "http://127.0.0.1:7480", NULL},
    {"HTTPS://S3.Example.com/some/path?x=1", "https://S3.Example.com", NULL},
    {"http://host:80", "http://host", NULL},
    {"https://host:443/", "https://host", NULL},
    {"http://host:443", "http://host:443", NULL},
    {"https://host:80", "https://host:80", NULL},
    {"http://[::1]:7480", "http://[::1]:7480", NULL},
    {"http://[::1]", "http://[::1]", NULL},
    {"http://[::1]:80/x", "http://[::1]", NULL},
    {"http://host:1234567", "http://host:1234567", NULL},
    {"host:7480", NULL, "endpoint must look like http(s)://host[:port]"},
    {"httpsxyz://host", NULL, "endpoint must look like http(s)://host[:port]"},
    {"httpss://host", NULL, "endpoint scheme must be http or https"},
    {"ftp://host", NULL, "endpoint scheme must be http or https"},
    {"://host", NULL, "endpoint scheme must be http or https"},
    {"http://", NULL, "endpoint host is empty or too long"},
    {"http://:7480", NULL, "endpoint host is empty or too long"},
    {"http:///bucket", NULL, "endpoint host is empty or too long"},
    {"http://host:12345678", NULL, "endpoint host is empty or too long"},
};

static void test_client_endpoint(void **state)
{
    (void)state;
    assert_int_equal(s3_global_init(), 0);
    for (size_t i = 0; i < sizeof endpoints / sizeof *endpoints; i++) {
        struct s3_client_options opt = {.endpoint = endpoints[i].url};
        struct s3_client *c = NULL;
        struct s3_error err = {0};
        int rc = s3_client_new(&opt, &c, &err);
        if (!endpoints[i].endpoint) {
            assert_int_equal(rc, -EINVAL);
            assert_string_equal(err.code, "InvalidEndpoint");
            assert_string_equal(err.message, endpoints[i].message);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_string_equal(s3_client_endpoint(c), endpoints[i].endpoint);
        s3_client_free(c);
    }
    /* a host that does not fit is refused rather than cut */
    char url[300] = "http://";
    memset(url + 7, 'h', 256);
    struct s3_client_options opt = {.endpoint = url};
    struct s3_client *c = NULL;
    struct s3_error err = {0};
    assert_int_equal(s3_client_new(&opt, &c, &err), -EINVAL);
    assert_string_equal(err.message, "endpoint host is empty or too long");
    url[7 + 255] = '\0'; /* 255 bytes fit */
    assert_int_equal(s3_client_new(&opt, &c, &err), 0);
    assert_int_equal(strlen(s3_client_endpoint(c)), 7 + 255);
    s3_client_free(c);
}

/* ---- the signing-key cache --------------------------------------------- */

/* More (date, region) pairs than the cache holds, so entries are evicted and
 * derived again while other threads use them. Index 0 is the documented GET
 * Object example, whose signature is known. */
#define CACHE_TUPLES 12
#define THREADS      8
#define ROUNDS       300

static const char *const tuple_region[3] = {"us-east-1", "eu-west-1", "ap-south-1"};

static void tuple_request(size_t i, const struct http_header *h, struct sigv4_request *req)
{
    *req = doc_request("GET", "/test.txt", "", h, 3, EMPTY_SHA256);
    req->region = tuple_region[i % 3];
    req->now = DOC_TIME + (time_t)(i / 3) * 86400;
}

static const struct http_header cache_headers[] = {
    {"Host", DOC_HOST}, {"Range", "bytes=0-9"}, {"x-amz-content-sha256", EMPTY_SHA256}};

static char expected_sig[CACHE_TUPLES][65];
static pthread_barrier_t start_line;

static void *cache_worker(void *arg)
{
    size_t t = (size_t)(uintptr_t)arg;
    size_t mismatches = 0;
    pthread_barrier_wait(&start_line);
    for (size_t r = 0; r < ROUNDS; r++) {
        size_t i = (r * 5 + t) % CACHE_TUPLES;
        struct sigv4_request req;
        struct sigv4_result res;
        tuple_request(i, cache_headers, &req);
        if (sigv4_sign(&req, &doc_cred, &res) != 0 || strcmp(res.signature, expected_sig[i]))
            mismatches++;
    }
    return (void *)(uintptr_t)mismatches;
}

static void test_key_cache_threads(void **state)
{
    (void)state;
    for (size_t i = 0; i < CACHE_TUPLES; i++) {
        struct sigv4_request req;
        struct sigv4_result res;
        tuple_request(i, cache_headers, &req);
        assert_int_equal(sigv4_sign(&req, &doc_cred, &res), 0);
        strcpy(expected_sig[i], res.signature);
    }
    assert_string_equal(expected_sig[0],
                        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    /* every tuple signs differently: the cache never hands out a wrong key */
    for (size_t i = 0; i < CACHE_TUPLES; i++)
        for (size_t j = i + 1; j < CACHE_TUPLES; j++)
            assert_string_not_equal(expected_sig[i], expected_sig[j]);

    pthread_t tid[THREADS];
    assert_int_equal(pthread_barrier_init(&start_line, NULL, THREADS), 0);
    for (size_t t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&tid[t], NULL, cache_worker, (void *)(uintptr_t)t), 0);
    uintptr_t total = 0;
    for (size_t t = 0; t < THREADS; t++) {
        void *mismatches;
        assert_int_equal(pthread_join(tid[t], &mismatches), 0);
        total += (uintptr_t)mismatches;
    }
    pthread_barrier_destroy(&start_line);
    assert_int_equal(total, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_vectors),       cmocka_unit_test(test_s3_get_object),
        cmocka_unit_test(test_s3_put_object),     cmocka_unit_test(test_s3_get_lifecycle),
        cmocka_unit_test(test_s3_list_objects),   cmocka_unit_test(test_copy_headers_sorted),
        cmocka_unit_test(test_rejects_bad_input), cmocka_unit_test(test_session_token_signed),
        cmocka_unit_test(test_body_digest),       cmocka_unit_test(test_client_endpoint),
        cmocka_unit_test(test_key_cache_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
