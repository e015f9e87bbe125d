/* fuzz_xml: every S3 XML document parser of s3/xml.c on the same body
 * (each refuses a root that is not its own, so one input reaches the one
 * it is shaped for): Error, ListObjectsV2, ListBuckets, Copy(Object|Part)
 * results, multipart initiate/complete, DeleteObjects results. And the
 * other way: the body up to its first NUL as a key of a DeleteObjects
 * request must read back, through libxml2, as exactly that key. */
#include <errno.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "fuzz.h"
#include "xml.h"

/* A parser's result is 0 or a negative errno it documents. */
static void check_rc(int rc)
{
    FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -ENOMEM || rc == -ENOENT);
}

static void check_etag(const char etag[80])
{
    FUZZ_CHECK(memchr(etag, '\0', 80) != NULL);
}

static void fuzz_list_objects(const char *body, size_t len)
{
    struct s3_list_page p;
    int rc = xml_parse_list_objects(body, len, &p);
    check_rc(rc);
    if (rc == 0) {
        for (size_t i = 0; i < p.nobjects; i++) {
            FUZZ_CHECK(p.objects[i].key && p.objects[i].key[0]);
            check_etag(p.objects[i].etag);
            FUZZ_CHECK(p.objects[i].mtime.tv_nsec >= 0 && p.objects[i].mtime.tv_nsec < 1000000000);
        }
        for (size_t i = 0; i < p.nprefixes; i++)
            FUZZ_CHECK(p.prefixes[i] && p.prefixes[i][0]);
        FUZZ_CHECK(!p.truncated || p.next_token);
    } else {
        FUZZ_CHECK(p.nobjects == 0 && !p.objects && !p.prefixes && !p.next_token);
    }
    s3_list_page_free(&p);
}

static void fuzz_list_buckets(const char *body, size_t len)
{
    struct s3_bucket *b;
    size_t n;
    int rc = xml_parse_list_buckets(body, len, &b, &n);
    check_rc(rc);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(b[i].name && b[i].name[0]);
    FUZZ_CHECK(rc == 0 || (!b && n == 0));
    s3_buckets_free(b, n);
}

static void fuzz_results(const char *body, size_t len)
{
    char etag[80];
    struct timespec mtime;
    struct s3_error e;
    s3_error_clear(&e);
    int rc = xml_parse_copy_result(body, len, etag, &mtime, &e);
    FUZZ_CHECK(rc == 1 || rc == 0 || rc == -EPROTO || rc == -ENOMEM);
    if (rc == 0) {
        check_etag(etag);
        FUZZ_CHECK(etag[0] != '\0');
    }
    rc = xml_parse_copy_result(body, len, etag, NULL, NULL);
    FUZZ_CHECK(rc == 1 || rc == 0 || rc == -EPROTO || rc == -ENOMEM);

    char *upload_id = NULL;
    rc = xml_parse_initiate_multipart(body, len, &upload_id);
    check_rc(rc);
    FUZZ_CHECK(rc == 0 ? upload_id && upload_id[0] : !upload_id);
    free(upload_id);

    s3_error_clear(&e);
    rc = xml_parse_complete_multipart(body, len, etag, &e);
    FUZZ_CHECK(rc == 1 || rc == 0 || rc == -EPROTO || rc == -ENOMEM);
    if (rc == 0)
        check_etag(etag);
}

static void fuzz_delete_result(const char *body, size_t len)
{
    size_t ndeleted, nerrors;
    struct s3_delete_error *errors;
    int rc = xml_parse_delete_result(body, len, &ndeleted, &errors, &nerrors);
    check_rc(rc);
    for (size_t i = 0; i < nerrors; i++) {
        FUZZ_CHECK(errors[i].key != NULL);
        FUZZ_CHECK(memchr(errors[i].code, '\0', sizeof errors[i].code));
        FUZZ_CHECK(memchr(errors[i].message, '\0', sizeof errors[i].message));
    }
    s3_delete_errors_free(errors, nerrors);
}

/* <Delete><Object><Key>key</Key>: the key the server will read. */
static void fuzz_delete_request(const char *key)
{
    struct sbuf out = SBUF_INIT;
    const char *keys[] = {key};
    if (xml_build_delete(&out, keys, 1, true) == 0) {
        xmlDoc *doc = xmlReadMemory(out.data, (int)out.len, NULL, NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        FUZZ_CHECK(doc != NULL);
        const xmlNode *n = xmlDocGetRootElement(doc)->children;
        while (n && strcmp((const char *)n->name, "Object") != 0)
            n = n->next;
        FUZZ_CHECK(n && n->children && strcmp((const char *)n->children->name, "Key") == 0);
        xmlChar *text = xmlNodeGetContent(n->children);
        FUZZ_CHECK(text && strcmp((const char *)text, key) == 0);
        xmlFree(text);
        xmlFreeDoc(doc);
    } else {
        FUZZ_CHECK(out.len == 0);
    }
    sbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct s3_error e;
    s3_error_clear(&e);
    int rc = xml_parse_error(body, size, &e);
    check_rc(rc);
    FUZZ_CHECK(memchr(e.code, '\0', sizeof e.code) && memchr(e.message, '\0', sizeof e.message));
    fuzz_list_objects(body, size);
    fuzz_list_buckets(body, size);
    fuzz_results(body, size);
    fuzz_delete_result(body, size);
    char *key = strndup(body, size);
    if (key)
        fuzz_delete_request(key);
    free(key);
    return 0;
}
