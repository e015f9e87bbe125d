/* xml.c - reading and writing the S3 XML documents (see xml.h).
 *
 * Every parser has the same shape: doc_open() turns the body into a libxml2
 * tree and checks the root element, the parser walks the children it needs
 * by local name (servers differ in the namespaces they declare, so the
 * namespace is never looked at), and child_text() copies an element's text
 * into a scratch buffer owned by the struct doc. That buffer is reused for
 * every field of the document, so a 1000-entry listing allocates once per
 * key, not once per field. Absent and empty elements read the same (""):
 * the callers that need a value treat "" as a protocol error.
 */
#include "xml.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "s3cfs/uri.h"

#define XML_DECL     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
#define S3_NAMESPACE "http://s3.amazonaws.com/doc/2006-03-01/"
#define ETAG_SIZE    80
#define MAX_DELETE   1000  /* DeleteObjects refuses more keys per request */
#define MAX_PART     10000 /* highest part number S3 accepts */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init_once(void)
{
    xmlInitParser();
}

void xml_init(void)
{
    pthread_once(&xml_once, xml_init_once);
}

/* ---- reading ---------------------------------------------------------- */

/* NONET: never fetch anything named by the document. No NOENT: entities are
 * not expanded (S3 never declares any). NOBLANKS drops the indentation of
 * pretty-printed answers. NOERROR/NOWARNING: a bad body is reported through
 * our return value, not printed on the daemon's stderr by libxml2. */
static const int parse_options =
    XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;

struct doc {
    xmlDoc *xml;
    const xmlNode *root;
    struct sbuf text;    /* text of the field read last (child_text) */
    struct sbuf decoded; /* the same, URL-decoded (EncodingType=url) */
    bool url;            /* Key and Prefix values are URL-encoded */
};

static bool is_elem(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static const xmlNode *first_child(const xmlNode *parent, const char *name)
{
    for (const xmlNode *c = parent->children; c; c = c->next)
        if (is_elem(c, name))
            return c;
    return NULL;
}

/* Parse body; the root must be called root_name (any root when NULL). A
 * struct doc is always left safe to doc_close(), whatever the result. */
static int doc_open(struct doc *d, const char *body, size_t len, const char *root_name)
{
    memset(d, 0, sizeof *d);
    xml_init(); /* cheap once done; spares callers that forgot s3_global_init() */
    /* AWS may send whitespace ahead of a late answer to keep the connection
     * alive; libxml2 would refuse a declaration that is not first. */
    while (body && len && (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n')) {
        body++;
        len--;
    }
    if (!body || len == 0 || len > INT_MAX)
        return -EPROTO;
    xmlResetLastError();
    d->xml = xmlReadMemory(body, (int)len, NULL, NULL, parse_options);
    if (!d->xml) {
        const xmlError *err = xmlGetLastError();
        return err && err->code == XML_ERR_NO_MEMORY ? -ENOMEM : -EPROTO;
    }
    /* S3 never sends a DTD: refusing one rules out entity tricks outright. */
    if (d->xml->intSubset || d->xml->extSubset)
        return -EPROTO;
    d->root = xmlDocGetRootElement(d->xml);
    if (!d->root || (root_name && !is_elem(d->root, root_name)))
        return -EPROTO;
    return 0;
}

static void doc_close(struct doc *d)
{
    xmlFreeDoc(d->xml);
    sbuf_free(&d->text);
    sbuf_free(&d->decoded);
    memset(d, 0, sizeof *d);
}

/* The one way fields are read: the text of parent's first child element
 * called name into d->text ("" when there is no such element). Text and
 * CDATA are gathered; entity references are skipped, not expanded. */
static int child_text(struct doc *d, const xmlNode *parent, const char *name)
{
    sbuf_reset(&d->text);
    const xmlNode *el = first_child(parent, name);
    if (!el)
        return 0;
    for (const xmlNode *t = el->children; t; t = t->next)
        if ((t->type == XML_TEXT_NODE || t->type == XML_CDATA_SECTION_NODE) && t->content)
            if (sbuf_append_str(&d->text, (const char *)t->content))
                return -ENOMEM;
    return 0;
}

static const char *text(const struct doc *d)
{
    return sbuf_str(&d->text);
}

/* Heap copy of d->text, URL-decoded when the listing said so ('+' is a
 * space there, as AWS encodes it; radosgw writes %20 and %2B). A NUL from
 * %00 would silently cut the string short, so it is refused. */
static int dup_text(struct doc *d, char **out)
{
    const struct sbuf *src = &d->text;
    if (d->url) {
        sbuf_reset(&d->decoded);
        int rc = uri_decode(&d->decoded, text(d), d->text.len, true);
        if (rc)
            return rc == -ENOMEM ? -ENOMEM : -EPROTO;
        src = &d->decoded;
    }
    if (memchr(sbuf_str(src), '\0', src->len))
        return -EPROTO;
    *out = strndup(sbuf_str(src), src->len);
    return *out ? 0 : -ENOMEM;
}

/* Copy into a fixed field, cut at a UTF-8 character boundary so a long
 * message does not end in half a character. For codes and messages only:
 * there a shortened text is still useful. */
static void copy_trunc(char *dst, size_t size, const struct sbuf *src)
{
    size_t n = src->len;
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src->data[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, sbuf_str(src), n);
    dst[n] = '\0';
}

/* ETag without the surrounding quotes: AWS quotes it, radosgw does not in
 * its Copy results. Unlike copy_trunc() a cut would corrupt it: -EPROTO. */
static int read_etag(struct doc *d, const xmlNode *parent, char etag[ETAG_SIZE])
{
    int rc = child_text(d, parent, "ETag");
    if (rc)
        return rc;
    const char *s = text(d);
    size_t n = d->text.len;
    if (n && s[0] == '"') {
        s++;
        n--;
    }
    if (n && s[n - 1] == '"')
        n--;
    if (n >= ETAG_SIZE)
        return -EPROTO;
    memcpy(etag, s, n);
    etag[n] = '\0';
    return 0;
}

static bool is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* Fraction digits after the '.' as nanoseconds (S3 sends milliseconds;
 * digits past the ninth are dropped). Returns the end of the digits. */
static const char *parse_fraction(const char *p, long *ns)
{
    long scale = 100000000;
    *ns = 0;
    for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
        *ns += (*p - '0') * scale;
    return p;
}

/* ISO 8601 in UTC the way S3 writes it: "2024-01-02T03:04:05.678Z", the
 * fraction optional. A stricter reader than strptime(): a time that is off
 * would make every cached attribute wrong, so anything else is -EPROTO. */
static int parse_time(const char *s, struct timespec *ts)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    for (size_t i = 0; i < sizeof shape - 1; i++)
        if (shape[i] == 'd' ? !is_digits(s + i, 1) : s[i] != shape[i])
            return -EPROTO;
    struct tm tm = {0};
    tm.tm_year = num(s, 4) - 1900;
    tm.tm_mon = num(s + 5, 2) - 1;
    tm.tm_mday = num(s + 8, 2);
    tm.tm_hour = num(s + 11, 2);
    tm.tm_min = num(s + 14, 2);
    tm.tm_sec = num(s + 17, 2);
    if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60)
        return -EPROTO;
    const char *p = s + sizeof shape - 1;
    long ns = 0;
    if (*p == '.') {
        const char *end = parse_fraction(p + 1, &ns);
        if (end == p + 1)
            return -EPROTO;
        p = end;
    }
    if (strcmp(p, "Z") != 0)
        return -EPROTO;
    ts->tv_sec = timegm(&tm);
    ts->tv_nsec = ns;
    return 0;
}

/* An optional timestamp field: absent leaves *ts zero, malformed fails. */
static int read_time(struct doc *d, const xmlNode *parent, const char *name, struct timespec *ts)
{
    int rc = child_text(d, parent, name);
    if (rc || d->text.len == 0)
        return rc;
    return parse_time(text(d), ts);
}

/* strtoull() alone would take "-1", " 5" or "" as numbers. */
static int parse_u64(const char *s, uint64_t *v)
{
    if (*s < '0' || *s > '9')
        return -EPROTO;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end)
        return -EPROTO;
    *v = x;
    return 0;
}

/* Make room for element n of an array of capacity *cap, doubling so that n
 * appends cost O(n). Returns the (maybe moved) array, NULL on ENOMEM with
 * the old array untouched. */
static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return arr;
    size_t ncap = *cap ? *cap * 2 : 16;
    if (ncap > SIZE_MAX / size)
        return NULL;
    void *p = realloc(arr, ncap * size);
    if (p)
        *cap = ncap;
    return p;
}

/* ---- Error ------------------------------------------------------------ */

/* Code, Message, RequestId of an <Error> root into e. The request id is
 * kept from the headers when the body has none. */
static int fill_error(struct doc *d, struct s3_error *e)
{
    int rc = child_text(d, d->root, "Code");
    if (rc)
        return rc;
    copy_trunc(e->code, sizeof e->code, &d->text);
    if ((rc = child_text(d, d->root, "Message")))
        return rc;
    copy_trunc(e->message, sizeof e->message, &d->text);
    if ((rc = child_text(d, d->root, "RequestId")))
        return rc;
    if (d->text.len)
        copy_trunc(e->request_id, sizeof e->request_id, &d->text);
    return 0;
}

int xml_parse_error(const char *body, size_t len, struct s3_error *e)
{
    struct doc d;
    int rc = doc_open(&d, body, len, NULL);
    if (!rc)
        rc = is_elem(d.root, "Error") ? fill_error(&d, e) : -ENOENT;
    doc_close(&d);
    return rc;
}

/* For answers that come with status 200 yet may be an <Error>: 0 when the
 * root is one of the two expected names, 1 with e filled when it is an
 * <Error>, -EPROTO otherwise. */
static int result_or_error(struct doc *d, const char *name1, const char *name2, struct s3_error *e)
{
    if (is_elem(d->root, name1) || (name2 && is_elem(d->root, name2)))
        return 0;
    if (!is_elem(d->root, "Error"))
        return -EPROTO;
    if (!e)
        return 1;
    int rc = fill_error(d, e);
    return rc ? rc : 1;
}

/* ---- ListObjectsV2 ---------------------------------------------------- */

static int object_fill(struct doc *d, const xmlNode *c, struct s3_object *o)
{
    int rc = child_text(d, c, "Key");
    if (rc)
        return rc;
    if (d->text.len == 0)
        return -EPROTO;
    if ((rc = dup_text(d, &o->key)))
        return rc;
    /* A missing size must not turn into an empty file. */
    if ((rc = child_text(d, c, "Size")) || (rc = parse_u64(text(d), &o->size)))
        return rc;
    if ((rc = read_etag(d, c, o->etag)))
        return rc;
    return read_time(d, c, "LastModified", &o->mtime);
}

static int add_object(struct doc *d, const xmlNode *c, struct s3_list_page *p, size_t *cap)
{
    struct s3_object *arr = grow(p->objects, cap, p->nobjects, sizeof *arr);
    if (!arr)
        return -ENOMEM;
    p->objects = arr;
    struct s3_object *o = &arr[p->nobjects];
    memset(o, 0, sizeof *o);
    int rc = object_fill(d, c, o);
    if (rc) {
        free(o->key);
        return rc;
    }
    p->nobjects++;
    return 0;
}

static int add_prefix(struct doc *d, const xmlNode *c, struct s3_list_page *p, size_t *cap)
{
    char **arr = grow(p->prefixes, cap, p->nprefixes, sizeof *arr);
    if (!arr)
        return -ENOMEM;
    p->prefixes = arr;
    int rc = child_text(d, c, "Prefix");
    if (rc)
        return rc;
    if (d->text.len == 0)
        return -EPROTO;
    if ((rc = dup_text(d, &arr[p->nprefixes])))
        return rc;
    p->nprefixes++;
    return 0;
}

static int list_page_tail(struct doc *d, struct s3_list_page *p)
{
    int rc = child_text(d, d->root, "IsTruncated");
    if (rc)
        return rc;
    if (strcmp(text(d), "true") == 0)
        p->truncated = true;
    else if (d->text.len && strcmp(text(d), "false") != 0)
        return -EPROTO;
    /* The token is opaque: never URL-decoded, sent back as it came. */
    if ((rc = child_text(d, d->root, "NextContinuationToken")))
        return rc;
    if (d->text.len && !(p->next_token = strdup(text(d))))
        return -ENOMEM;
    /* A caller given no token would start over from the top, forever. */
    return p->truncated && !p->next_token ? -EPROTO : 0;
}

static int list_page_fill(struct doc *d, struct s3_list_page *p)
{
    int rc = child_text(d, d->root, "EncodingType");
    if (rc)
        return rc;
    d->url = strcmp(text(d), "url") == 0;
    size_t ocap = 0, pcap = 0;
    for (const xmlNode *c = d->root->children; c && !rc; c = c->next) {
        if (is_elem(c, "Contents"))
            rc = add_object(d, c, p, &ocap);
        else if (is_elem(c, "CommonPrefixes"))
            rc = add_prefix(d, c, p, &pcap);
    }
    return rc ? rc : list_page_tail(d, p);
}

/* The control byte a character reference "&#...;" at s names (which XML 1.0
 * forbids but for tab, LF and CR), with its length in *n; 0 for anything else. */
static int forbidden_char_ref(const char *s, size_t left, size_t *n)
{
    size_t i = 2;
    bool hex = left > 2 && s[2] == 'x';
    int v = 0;
    for (i += hex; i < left && i < 8 && s[i] != ';'; i++) {
        int d = hex                            ? uri_hex_value((unsigned char)s[i])
                : (s[i] >= '0' && s[i] <= '9') ? s[i] - '0'
                                               : -1;
        if (d < 0)
            return 0;
        v = v * (hex ? 16 : 10) + d;
    }
    if (i >= left || s[i] != ';' || i == 2u + hex)
        return 0;
    *n = i + 1;
    return v >= 1 && v < 0x20 && v != '\t' && v != '\n' && v != '\r' ? v : 0;
}

/* radosgw echoes the request's prefix unencoded even with EncodingType=url,
 * a control byte as "&#x1b;", which libxml2 rightly refuses. Written as
 * "%1B" instead, it decodes back to the byte in a URL-encoded field; the
 * echoed Prefix itself is never read. */
static int url_encode_char_refs(const char *body, size_t len, struct sbuf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t from = 0, n;
    for (size_t i = 0; i + 2 < len; i++) {
        int v;
        if (body[i] != '&' || body[i + 1] != '#' ||
            !(v = forbidden_char_ref(body + i, len - i, &n)))
            continue;
        char pct[3] = {'%', hex[v >> 4], hex[v & 15]};
        if (sbuf_append(out, body + from, i - from) || sbuf_append(out, pct, 3))
            return -ENOMEM;
        i += n - 1;
        from = i + 1;
    }
    return sbuf_append(out, body + from, len - from) ? -ENOMEM : 0;
}

int xml_parse_list_objects(const char *body, size_t len, struct s3_list_page *out)
{
    memset(out, 0, sizeof *out);
    struct doc d;
    struct sbuf fixed = SBUF_INIT;
    if (body && memmem(body, len, "&#", 2)) {
        if (url_encode_char_refs(body, len, &fixed)) {
            sbuf_free(&fixed);
            return -ENOMEM;
        }
        body = fixed.data;
        len = fixed.len;
    }
    int rc = doc_open(&d, body, len, "ListBucketResult");
    if (!rc)
        rc = list_page_fill(&d, out);
    doc_close(&d);
    sbuf_free(&fixed);
    if (rc)
        s3_list_page_free(out);
    return rc;
}

void s3_list_page_free(struct s3_list_page *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nobjects; i++)
        free(p->objects[i].key);
    for (size_t i = 0; i < p->nprefixes; i++)
        free(p->prefixes[i]);
    free(p->objects);
    free(p->prefixes);
    free(p->next_token);
    memset(p, 0, sizeof *p);
}

/* ---- ListAllMyBuckets ------------------------------------------------- */

static int bucket_fill(struct doc *d, const xmlNode *c, struct s3_bucket *b)
{
    int rc = child_text(d, c, "Name");
    if (rc)
        return rc;
    if (d->text.len == 0)
        return -EPROTO;
    if ((rc = dup_text(d, &b->name)))
        return rc;
    struct timespec ts = {0, 0};
    rc = read_time(d, c, "CreationDate", &ts);
    b->created = ts.tv_sec;
    return rc;
}

static int buckets_fill(struct doc *d, struct s3_bucket **out, size_t *n)
{
    const xmlNode *list = first_child(d->root, "Buckets");
    size_t cap = 0;
    for (const xmlNode *c = list ? list->children : NULL; c; c = c->next) {
        if (!is_elem(c, "Bucket"))
            continue;
        struct s3_bucket *arr = grow(*out, &cap, *n, sizeof *arr);
        if (!arr)
            return -ENOMEM;
        *out = arr;
        memset(&arr[*n], 0, sizeof arr[*n]);
        int rc = bucket_fill(d, c, &arr[*n]);
        if (rc) {
            free(arr[*n].name);
            return rc;
        }
        (*n)++;
    }
    return 0;
}

int xml_parse_list_buckets(const char *body, size_t len, struct s3_bucket **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct doc d;
    int rc = doc_open(&d, body, len, "ListAllMyBucketsResult");
    if (!rc)
        rc = buckets_fill(&d, out, n);
    doc_close(&d);
    if (rc) {
        s3_buckets_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void s3_buckets_free(struct s3_bucket *b, size_t n)
{
    for (size_t i = 0; b && i < n; i++)
        free(b[i].name);
    free(b);
}

/* ---- Copy, multipart -------------------------------------------------- */

int xml_parse_copy_result(const char *body, size_t len, char etag[80], struct timespec *mtime,
                          struct s3_error *e)
{
    struct doc d;
    struct timespec ts = {0, 0};
    int rc = doc_open(&d, body, len, NULL);
    if (!rc)
        rc = result_or_error(&d, "CopyObjectResult", "CopyPartResult", e);
    if (!rc)
        rc = read_etag(&d, d.root, etag);
    /* The ETag is what later copies are pinned to: an answer without one
     * is no confirmation. */
    if (!rc && etag[0] == '\0')
        rc = -EPROTO;
    if (!rc)
        rc = read_time(&d, d.root, "LastModified", &ts);
    if (!rc && mtime)
        *mtime = ts;
    doc_close(&d);
    return rc;
}

int xml_parse_initiate_multipart(const char *body, size_t len, char **upload_id)
{
    *upload_id = NULL;
    struct doc d;
    int rc = doc_open(&d, body, len, "InitiateMultipartUploadResult");
    if (!rc)
        rc = child_text(&d, d.root, "UploadId");
    if (!rc)
        rc = d.text.len ? dup_text(&d, upload_id) : -EPROTO;
    doc_close(&d);
    return rc;
}

int xml_parse_complete_multipart(const char *body, size_t len, char etag[80], struct s3_error *e)
{
    struct doc d;
    int rc = doc_open(&d, body, len, NULL);
    if (!rc)
        rc = result_or_error(&d, "CompleteMultipartUploadResult", NULL, e);
    if (!rc)
        rc = read_etag(&d, d.root, etag); /* radosgw may leave it empty */
    doc_close(&d);
    return rc;
}

/* ---- DeleteResult ----------------------------------------------------- */

static int delete_error_fill(struct doc *d, const xmlNode *c, struct s3_delete_error *de)
{
    int rc = child_text(d, c, "Key");
    if (rc || (rc = dup_text(d, &de->key)))
        return rc;
    if ((rc = child_text(d, c, "Code")))
        return rc;
    copy_trunc(de->code, sizeof de->code, &d->text);
    if ((rc = child_text(d, c, "Message")))
        return rc;
    copy_trunc(de->message, sizeof de->message, &d->text);
    return 0;
}

static int delete_result_fill(struct doc *d, size_t *ndeleted, struct s3_delete_error **errors,
                              size_t *nerrors)
{
    size_t cap = 0;
    for (const xmlNode *c = d->root->children; c; c = c->next) {
        if (is_elem(c, "Deleted"))
            (*ndeleted)++;
        if (!is_elem(c, "Error"))
            continue;
        struct s3_delete_error *arr = grow(*errors, &cap, *nerrors, sizeof *arr);
        if (!arr)
            return -ENOMEM;
        *errors = arr;
        memset(&arr[*nerrors], 0, sizeof arr[*nerrors]);
        int rc = delete_error_fill(d, c, &arr[*nerrors]);
        if (rc) {
            free(arr[*nerrors].key);
            return rc;
        }
        (*nerrors)++;
    }
    return 0;
}

int xml_parse_delete_result(const char *body, size_t len, size_t *ndeleted,
                            struct s3_delete_error **errors, size_t *nerrors)
{
    *ndeleted = 0;
    *errors = NULL;
    *nerrors = 0;
    struct doc d;
    int rc = doc_open(&d, body, len, "DeleteResult");
    if (!rc)
        rc = delete_result_fill(&d, ndeleted, errors, nerrors);
    doc_close(&d);
    if (rc) {
        s3_delete_errors_free(*errors, *nerrors);
        *ndeleted = 0;
        *errors = NULL;
        *nerrors = 0;
    }
    return rc;
}

void s3_delete_errors_free(struct s3_delete_error *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++)
        free(e[i].key);
    free(e);
}

/* ---- building --------------------------------------------------------- */

/* Length of the UTF-8 sequence at s (n bytes left) if it encodes a
 * character XML 1.0 can carry (Char production), else 0. Overlong forms,
 * surrogates and U+FFFE/U+FFFF are refused: the server would reject the
 * whole batch as MalformedXML. */
static size_t xml_char_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return s[0] >= 0x20 || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' ? 1 : 0;
    size_t len;
    uint32_t cp, min;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2;
        cp = s[0] & 0x1F;
        min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3;
        cp = s[0] & 0x0F;
        min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4;
        cp = s[0] & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF)
        return 0;
    return len;
}

/* The markup characters, and the whitespace a parser would normalise (CR
 * LF becomes LF; attribute values fold TAB/LF to spaces): written as
 * references so the server reads back exactly the key we mean. */
static const char *escape_for(unsigned char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&apos;";
    case '\t':
        return "&#9;";
    case '\n':
        return "&#10;";
    case '\r':
        return "&#13;";
    default:
        return NULL;
    }
}

/* s[0..n) escaped, plain runs appended in one piece. */
static int append_escaped(struct sbuf *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    while (i < n) {
        size_t w = xml_char_len(u + i, n - i);
        if (w == 0)
            return -EINVAL;
        const char *rep = escape_for(u[i]);
        if (!rep) {
            i += w;
            continue;
        }
        if (sbuf_append(out, s + run, i - run) || sbuf_append_str(out, rep))
            return -ENOMEM;
        run = ++i;
    }
    return sbuf_append(out, s + run, n - run);
}

/* Drop what a failed builder appended, so the caller's buffer keeps its
 * previous content, as sbuf's own appends promise. */
static void truncate_to(struct sbuf *b, size_t len)
{
    b->len = len;
    if (b->data)
        b->data[len] = '\0';
}

static int delete_body(struct sbuf *out, const char *const *keys, const char *const *etags,
                       size_t nkeys, bool quiet)
{
    int rc = sbuf_append_str(out, XML_DECL "<Delete xmlns=\"" S3_NAMESPACE "\">");
    if (!rc && quiet)
        rc = sbuf_append_str(out, "<Quiet>true</Quiet>");
    for (size_t i = 0; i < nkeys && !rc; i++) {
        /* S3 has no empty key; sending one fails the whole batch. */
        if (!keys[i] || !keys[i][0])
            return -EINVAL;
        rc = sbuf_append_str(out, "<Object><Key>");
        if (!rc)
            rc = append_escaped(out, keys[i], strlen(keys[i]));
        if (!rc)
            rc = sbuf_append_str(out, "</Key>");
        const char *etag = etags ? etags[i] : NULL;
        if (!rc && etag && *etag) { /* delete only while the object has this ETag */
            rc = sbuf_append_str(out, "<ETag>\"");
            if (!rc)
                rc = append_escaped(out, etag, strlen(etag));
            if (!rc)
                rc = sbuf_append_str(out, "\"</ETag>");
        }
        if (!rc)
            rc = sbuf_append_str(out, "</Object>");
    }
    return rc ? rc : sbuf_append_str(out, "</Delete>");
}

int xml_build_delete(struct sbuf *out, const char *const *keys, size_t nkeys, bool quiet)
{
    return xml_build_delete_etags(out, keys, NULL, nkeys, quiet);
}

int xml_build_delete_etags(struct sbuf *out, const char *const *keys, const char *const *etags,
                           size_t nkeys, bool quiet)
{
    if (nkeys == 0 || nkeys > MAX_DELETE)
        return -EINVAL;
    size_t mark = out->len;
    int rc = delete_body(out, keys, etags, nkeys, quiet);
    if (rc)
        truncate_to(out, mark);
    return rc;
}

/* S3 wants part numbers 1..10000 in ascending order; checking here gives
 * the caller -EINVAL instead of a round trip ending in InvalidPartOrder. */
static bool part_ok(const struct s3_part *parts, size_t i)
{
    if (parts[i].number < 1 || parts[i].number > MAX_PART)
        return false;
    if (i > 0 && parts[i].number <= parts[i - 1].number)
        return false;
    return strnlen(parts[i].etag, ETAG_SIZE) < ETAG_SIZE;
}

static int complete_body(struct sbuf *out, const struct s3_part *parts, size_t n)
{
    int rc = sbuf_append_str(out, XML_DECL "<CompleteMultipartUpload xmlns=\"" S3_NAMESPACE "\">");
    for (size_t i = 0; i < n && !rc; i++) {
        if (!part_ok(parts, i))
            return -EINVAL;
        rc = sbuf_appendf(out, "<Part><PartNumber>%d</PartNumber><ETag>\"", parts[i].number);
        if (!rc)
            rc = append_escaped(out, parts[i].etag, strlen(parts[i].etag));
        if (!rc)
            rc = sbuf_append_str(out, "\"</ETag></Part>");
    }
    return rc ? rc : sbuf_append_str(out, "</CompleteMultipartUpload>");
}

int xml_build_complete_multipart(struct sbuf *out, const struct s3_part *parts, size_t n)
{
    if (n == 0 || n > MAX_PART)
        return -EINVAL;
    size_t mark = out->len;
    int rc = complete_body(out, parts, n);
    if (rc)
        truncate_to(out, mark);
    return rc;
}
