/* Every S3 operation of s3.h against the real radosgw, with independent
 * checks through the AWS CLI. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "itest.h"

static struct s3_client *cli;

static int setup(void **state)
{
    (void)state;
    cli = itest_client(NULL, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    itest_client_free(cli);
    return 0;
}

static void put_mem(const char *bucket, const char *key, const char *data, size_t len)
{
    struct s3_body b = {.data = data, .fd = -1, .len = len};
    struct s3_error err;
    int rc = s3_put_object(cli, bucket, key, &b, NULL, NULL, &err);
    if (rc)
        fprintf(stderr, "put %s: %s %s\n", key, err.code, err.message);
    assert_int_equal(rc, 0);
}

static void assert_content(const char *bucket, const char *key, const char *data, size_t len)
{
    char *got = malloc(len + 1);
    size_t n = 0;
    struct s3_error err;
    assert_int_equal(s3_get_object(cli, bucket, key, 0, len + 1, NULL, got, &n, &err), 0);
    assert_int_equal(n, len);
    assert_memory_equal(got, data, len);
    free(got);
}

static void test_buckets(void **state)
{
    (void)state;
    char b[64];
    itest_bucket(cli, "bk", b);
    struct s3_bucket *list = NULL;
    size_t n = 0;
    struct s3_error err;
    assert_int_equal(s3_list_buckets(cli, &list, &n, &err), 0);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found += strcmp(list[i].name, b) == 0;
    assert_int_equal(found, 1);
    s3_buckets_free(list, n);
    assert_int_equal(s3_head_bucket(cli, b, &err), 0);
    assert_int_equal(s3_head_bucket(cli, "s3cfs-no-such-bucket-here", &err), -ENOENT);
    assert_string_equal(err.code, "NoSuchBucket");
    struct s3_list_page page = {0};
    assert_int_equal(
        s3_list_objects(cli, "s3cfs-no-such-bucket-here", NULL, "/", NULL, 0, &page, &err),
        -ENOENT);
    assert_string_equal(err.code, "NoSuchBucket");
    assert_int_equal(s3_delete_bucket(cli, b, &err), 0);
    assert_int_equal(s3_head_bucket(cli, b, &err), -ENOENT);
}

static void test_put_get_head(void **state)
{
    (void)state;
    char b[64];
    itest_bucket(cli, "pg", b);
    static char data[100000];
    itest_fill(data, sizeof data, 1);
    struct s3_meta meta[] = {{"mode", "33188"}, {"uid", "1000"}, {"mtime", "1700000000"}};
    struct s3_write_opts wo = {.content_type = "text/plain", .meta = meta, .nmeta = 3};
    struct s3_body body = {.data = data, .fd = -1, .len = sizeof data};
    struct s3_error err;
    char etag[80];
    assert_int_equal(s3_put_object(cli, b, "dir/file.bin", &body, &wo, etag, &err), 0);
    assert_int_equal(strlen(etag), 32); /* MD5 hex of a single PUT */

    struct s3_head h;
    assert_int_equal(s3_head_object(cli, b, "dir/file.bin", &h, &err), 0);
    assert_int_equal(h.size, sizeof data);
    assert_string_equal(h.etag, etag);
    assert_string_equal(h.content_type, "text/plain");
    assert_string_equal(s3_head_meta(&h, "mode"), "33188");
    assert_string_equal(s3_head_meta(&h, "uid"), "1000");
    assert_true(h.mtime.tv_sec > 1700000000);
    s3_head_free(&h);
    assert_content(b, "dir/file.bin", data, sizeof data);

    /* ranges, the end, and past the end */
    char buf[1000];
    size_t got;
    assert_int_equal(s3_get_object(cli, b, "dir/file.bin", 500, 1000, NULL, buf, &got, &err), 0);
    assert_int_equal(got, 1000);
    assert_memory_equal(buf, data + 500, 1000);
    assert_int_equal(
        s3_get_object(cli, b, "dir/file.bin", sizeof data - 10, 1000, NULL, buf, &got, &err), 0);
    assert_int_equal(got, 10);
    assert_int_equal(s3_get_object(cli, b, "dir/file.bin", sizeof data, 100, NULL, buf, &got, &err),
                     0);
    assert_int_equal(got, 0);
    /* the server never chooses how much is read into memory */
    got = 7;
    assert_int_equal(s3_get_object(cli, b, "dir/file.bin", 0, 0, NULL, buf, &got, &err), -EINVAL);
    assert_int_equal(got, 0);
    struct sbuf whole = SBUF_INIT;
    assert_int_equal(s3_get_object_buf(cli, b, "dir/file.bin", &whole, 0, &err), -EINVAL);
    assert_int_equal(s3_get_object_buf(cli, b, "dir/file.bin", &whole, 100, &err), -ENOSPC);
    assert_string_equal(err.code, "BadResponse");
    sbuf_free(&whole);
    /* a condition on a stale ETag */
    assert_int_equal(s3_get_object(cli, b, "dir/file.bin", 0, 10, etag, buf, &got, &err), 0);
    assert_int_equal(s3_get_object(cli, b, "dir/file.bin", 0, 10,
                                   "0123456789abcdef0123456789abcdef", buf, &got, &err),
                     -ESTALE);
    assert_int_equal(s3_head_object(cli, b, "dir/nothing", &h, &err), -ENOENT);
    assert_int_equal(s3_get_object(cli, b, "dir/nothing", 0, 10, NULL, buf, &got, &err), -ENOENT);
    assert_string_equal(err.code, "NoSuchKey");

    /* the AWS CLI sees the same object and metadata */
    struct sbuf out = SBUF_INIT;
    assert_int_equal(itest_aws(&out,
                               "s3api head-object --bucket %s --key dir/file.bin "
                               "--query '[ContentLength,Metadata.mode,Metadata.uid]' --output text",
                               b),
                     0);
    assert_string_equal(sbuf_str(&out), "100000\t33188\t1000\n");
    sbuf_free(&out);
    char path[] = "/tmp/s3cfs-itest-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(itest_aws(NULL, "s3 cp --quiet s3://%s/dir/file.bin %s", b, path), 0);
    FILE *f = fopen(path, "rb");
    static char back[100001];
    assert_int_equal(fread(back, 1, sizeof back, f), sizeof data);
    fclose(f);
    assert_memory_equal(back, data, sizeof data);
    /* and an object written by the CLI reads back through us, from a file body */
    assert_int_equal(itest_aws(NULL, "s3 cp --quiet %s s3://%s/from-cli", path, b), 0);
    assert_content(b, "from-cli", data, sizeof data);
    fd = open(path, O_RDONLY);
    struct s3_body fb = {.fd = fd, .offset = 100, .len = 5000};
    assert_int_equal(s3_put_object(cli, b, "from-fd", &fb, NULL, NULL, &err), 0);
    close(fd);
    unlink(path);
    assert_content(b, "from-fd", data + 100, 5000);
    /* an empty object */
    put_mem(b, "empty", "", 0);
    assert_int_equal(s3_head_object(cli, b, "empty", &h, &err), 0);
    assert_int_equal(h.size, 0);
    s3_head_free(&h);
}

static const char *odd_keys[] = {
    "with space/a b.txt",   "plus+sign",       "percent%41%zz",   "unicode/élève-日本語.txt",
    "tilde~and=equals&amp", "trailing space ", "a//double/slash", "q?mark#hash",
};

static void test_odd_keys(void **state)
{
    (void)state;
    char b[64];
    itest_bucket(cli, "odd", b);
    char longkey[1025];
    memset(longkey, 'k', 1024);
    memcpy(longkey, "long/", 5);
    longkey[1024] = '\0';
    size_t n = sizeof odd_keys / sizeof *odd_keys;
    struct s3_error err;
    for (size_t i = 0; i <= n; i++) {
        const char *k = i < n ? odd_keys[i] : longkey;
        put_mem(b, k, k, strlen(k));
        assert_content(b, k, k, strlen(k));
        struct s3_head h;
        assert_int_equal(s3_head_object(cli, b, k, &h, &err), 0);
        assert_int_equal(h.size, strlen(k));
        s3_head_free(&h);
        char dst[1100];
        snprintf(dst, sizeof dst, "copy/%s", k);
        dst[1024] = '\0';
        assert_int_equal(s3_copy_object(cli, b, k, b, dst, NULL, NULL, &err), 0);
        assert_content(b, dst, k, strlen(k));
    }
    /* a listing returns every key exactly, decoded */
    struct s3_list_page page = {0};
    assert_int_equal(s3_list_objects(cli, b, NULL, NULL, NULL, 0, &page, &err), 0);
    assert_int_equal(page.nobjects, 2 * (n + 1));
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t j = 0; j < page.nobjects; j++)
            found += strcmp(page.objects[j].key, odd_keys[i]) == 0;
        assert_int_equal(found, 1);
    }
    s3_list_page_free(&page);
    /* the CLI agrees on the names */
    struct sbuf out = SBUF_INIT;
    assert_int_equal(itest_aws(&out,
                               "s3api head-object --bucket %s --key 'unicode/élève-日本語.txt' "
                               "--query ContentLength --output text",
                               b),
                     0);
    assert_int_equal(atoi(sbuf_str(&out)), (int)strlen("unicode/élève-日本語.txt"));
    sbuf_free(&out);
    /* batch delete of them all */
    const char *keys[2 * 9 + 2];
    char copies[9][1100];
    size_t nk = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *k = i < n ? odd_keys[i] : longkey;
        keys[nk++] = k;
        snprintf(copies[i], sizeof copies[i], "copy/%s", k);
        copies[i][1024] = '\0';
        keys[nk++] = copies[i];
    }
    struct s3_delete_error *errs;
    size_t nerrs;
    assert_int_equal(s3_delete_objects(cli, b, keys, NULL, nk, &errs, &nerrs, &err), 0);
    assert_int_equal(nerrs, 0);
    s3_delete_errors_free(errs, nerrs);
    assert_int_equal(s3_list_objects(cli, b, NULL, NULL, NULL, 0, &page, &err), 0);
    assert_int_equal(page.nobjects, 0);
    s3_list_page_free(&page);
}

struct putter {
    const char *bucket;
    int from, to;
};

static void *put_range(void *arg)
{
    struct putter *p = arg;
    for (int i = p->from; i < p->to; i++) {
        char key[64];
        snprintf(key, sizeof key, "many/d%02d/f%05d", i % 7, i);
        put_mem(p->bucket, key, key, strlen(key));
    }
    return NULL;
}

struct tally {
    size_t objects, prefixes, pages;
    char seen[1100];
};

static int count_page(const struct s3_list_page *page, void *arg)
{
    struct tally *t = arg;
    t->pages++;
    t->prefixes += page->nprefixes;
    for (size_t i = 0; i < page->nobjects; i++) {
        int n = atoi(strrchr(page->objects[i].key, 'f') + 1);
        assert_true(n >= 0 && n < 1100);
        assert_int_equal(t->seen[n], 0); /* no key twice */
        t->seen[n] = 1;
        t->objects++;
    }
    return 0;
}

static void test_list_many(void **state)
{
    (void)state;
    char b[64];
    itest_bucket(cli, "many", b);
    pthread_t th[16];
    struct putter p[16];
    for (int i = 0; i < 16; i++) {
        p[i] = (struct putter){b, i * 1100 / 16, (i + 1) * 1100 / 16};
        pthread_create(&th[i], NULL, put_range, &p[i]);
    }
    for (int i = 0; i < 16; i++)
        pthread_join(th[i], NULL);
    struct tally t = {0};
    struct s3_error err;
    assert_int_equal(s3_list_all(cli, b, "many/", NULL, count_page, &t, &err), 0);
    assert_int_equal(t.objects, 1100);
    assert_int_equal(t.pages, 2);
    struct tally d = {0};
    assert_int_equal(s3_list_all(cli, b, "many/", "/", count_page, &d, &err), 0);
    assert_int_equal(d.prefixes, 7);
    assert_int_equal(d.objects, 0);
    /* a one-key page size forces many continuation tokens */
    struct s3_list_page page = {0};
    assert_int_equal(s3_list_objects(cli, b, "many/d03/", NULL, NULL, 1, &page, &err), 0);
    assert_int_equal(page.nobjects, 1);
    assert_true(page.truncated);
    assert_non_null(page.next_token);
    struct s3_list_page page2 = {0};
    assert_int_equal(s3_list_objects(cli, b, "many/d03/", NULL, page.next_token, 1, &page2, &err),
                     0);
    assert_int_equal(page2.nobjects, 1);
    assert_true(strcmp(page.objects[0].key, page2.objects[0].key) < 0);
    s3_list_page_free(&page);
    s3_list_page_free(&page2);
    /* delete in batches of 1000 */
    const char **keys = calloc(1100, sizeof *keys);
    char(*names)[64] = calloc(1100, 64);
    for (int i = 0; i < 1100; i++) {
        snprintf(names[i], 64, "many/d%02d/f%05d", i % 7, i);
        keys[i] = names[i];
    }
    struct s3_delete_error *errs;
    size_t nerrs;
    assert_int_equal(s3_delete_objects(cli, b, keys, NULL, 1000, &errs, &nerrs, &err), 0);
    assert_int_equal(nerrs, 0);
    assert_int_equal(s3_delete_objects(cli, b, keys + 1000, NULL, 100, &errs, &nerrs, &err), 0);
    assert_int_equal(nerrs, 0);
    assert_int_equal(s3_delete_objects(cli, b, keys, NULL, 1001, &errs, &nerrs, &err), -EINVAL);
    struct tally z = {0};
    assert_int_equal(s3_list_all(cli, b, NULL, NULL, count_page, &z, &err), 0);
    assert_int_equal(z.objects, 0);
    free(keys);
    free(names);
}

static void test_copy(void **state)
{
    (void)state;
    char b[64], b2[64];
    itest_bucket(cli, "cp", b);
    itest_bucket(cli, "cp2", b2);
    struct s3_meta meta[] = {{"mode", "33261"}};
    struct s3_write_opts wo = {.content_type = "application/x-thing", .meta = meta, .nmeta = 1};
    struct s3_body body = {.data = "hello copy", .fd = -1, .len = 10};
    struct s3_error err;
    char etag[80], cetag[80];
    assert_int_equal(s3_put_object(cli, b, "src", &body, &wo, etag, &err), 0);

    /* COPY keeps metadata; across buckets too */
    struct s3_copy_opts co = {.if_match = etag};
    assert_int_equal(s3_copy_object(cli, b, "src", b2, "dst", &co, cetag, &err), 0);
    assert_string_equal(cetag, etag);
    struct s3_head h;
    assert_int_equal(s3_head_object(cli, b2, "dst", &h, &err), 0);
    assert_string_equal(s3_head_meta(&h, "mode"), "33261");
    assert_string_equal(h.content_type, "application/x-thing");
    s3_head_free(&h);
    assert_content(b2, "dst", "hello copy", 10);

    /* REPLACE sets new metadata, in place as well */
    struct s3_meta meta2[] = {{"mode", "33188"}, {"mtime", "1600000000"}};
    struct s3_write_opts rep = {.meta = meta2, .nmeta = 2};
    struct s3_copy_opts co2 = {.replace = &rep};
    assert_int_equal(s3_copy_object(cli, b, "src", b, "src", &co2, NULL, &err), 0);
    assert_int_equal(s3_head_object(cli, b, "src", &h, &err), 0);
    assert_string_equal(s3_head_meta(&h, "mode"), "33188");
    assert_string_equal(s3_head_meta(&h, "mtime"), "1600000000");
    s3_head_free(&h);
    assert_content(b, "src", "hello copy", 10);

    /* a source that changed behind our back: the copy fails cleanly */
    struct s3_body body2 = {.data = "changed!", .fd = -1, .len = 8};
    assert_int_equal(s3_put_object(cli, b, "src", &body2, NULL, NULL, &err), 0);
    assert_int_equal(s3_copy_object(cli, b, "src", b, "dst2", &co, NULL, &err), -ESTALE);
    assert_int_equal(s3_head_object(cli, b, "dst2", &h, &err), -ENOENT);
    /* a missing source */
    assert_int_equal(s3_copy_object(cli, b, "nope", b, "dst3", NULL, NULL, &err), -ENOENT);
}

/* The object headers a rewrite carries: HEAD reports them, a write sends
 * them, and tags travel as a <Tagging> document. */
static void test_object_headers_and_tags(void **state)
{
    (void)state;
    char b[64];
    itest_bucket(cli, "hdr", b);
    struct s3_meta extra[] = {{"Cache-Control", "max-age=60"},
                              {"Content-Language", "de"},
                              {"Content-Disposition", "attachment; filename=\"x.txt\""}};
    struct s3_write_opts wo = {.content_type = "text/x-test", .headers = extra, .nheaders = 3};
    struct s3_body body = {.data = "tagged", .fd = -1, .len = 6};
    struct s3_error err;
    assert_int_equal(s3_put_object(cli, b, "o", &body, &wo, NULL, &err), 0);
    struct s3_head h;
    assert_int_equal(s3_head_object(cli, b, "o", &h, &err), 0);
    assert_string_equal(s3_head_header(&h, "cache-control"), "max-age=60");
    assert_string_equal(s3_head_header(&h, "content-language"), "de");
    assert_string_equal(s3_head_header(&h, "content-disposition"),
                        "attachment; filename=\"x.txt\"");
    assert_null(s3_head_header(&h, "content-length")); /* only the object's own headers */
    assert_int_equal(h.tag_count, 0);
    s3_head_free(&h);

    const char *doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Tagging><TagSet>"
                      "<Tag><Key>team</Key><Value>a &amp; b</Value></Tag></TagSet></Tagging>";
    struct sbuf xml = SBUF_INIT, back = SBUF_INIT;
    assert_int_equal(sbuf_append_str(&xml, doc), 0);
    assert_int_equal(s3_put_object_tagging(cli, b, "o", &xml, &err), 0);
    assert_int_equal(s3_head_object(cli, b, "o", &h, &err), 0);
    assert_int_equal(h.tag_count, 1);
    s3_head_free(&h);
    assert_int_equal(s3_get_object_tagging(cli, b, "o", &back, &err), 0);
    assert_non_null(strstr(sbuf_str(&back), "<Key>team</Key><Value>a &amp; b</Value>"));
    /* the document read goes back as it is, onto another object */
    assert_int_equal(s3_put_object(cli, b, "p", &body, NULL, NULL, &err), 0);
    assert_int_equal(s3_put_object_tagging(cli, b, "p", &back, &err), 0);
    struct sbuf out = SBUF_INIT;
    assert_int_equal(itest_aws(&out,
                               "s3api get-object-tagging --bucket %s --key p "
                               "--query 'TagSet[0].Value' --output text",
                               b),
                     0);
    assert_string_equal(sbuf_str(&out), "a & b\n");
    sbuf_free(&out);
    assert_int_equal(s3_get_object_tagging(cli, b, "nope", &back, &err), -ENOENT);
    sbuf_free(&xml);
    sbuf_free(&back);
}

#define MIB (1024 * 1024)

static void test_multipart(void **state)
{
    (void)state;
    char b[64];
    itest_bucket(cli, "mpu", b);
    size_t len = 12 * MIB + 12345;
    char *data = malloc(len), *back = malloc(len + 1);
    itest_fill(data, len, 7);
    struct s3_error err;
    char *id = NULL;
    struct s3_meta meta[] = {{"mode", "33188"}};
    struct s3_write_opts wo = {.meta = meta, .nmeta = 1};
    assert_int_equal(s3_mpu_create(cli, b, "big", &wo, &id, &err), 0);
    struct s3_part parts[3];
    size_t psz = 5 * MIB;
    for (int i = 0; i < 3; i++) {
        size_t off = i * psz, n = i < 2 ? psz : len - 2 * psz;
        struct s3_body pb = {.data = data + off, .fd = -1, .len = n};
        parts[i].number = i + 1;
        assert_int_equal(s3_mpu_upload_part(cli, b, "big", id, i + 1, &pb, parts[i].etag, &err), 0);
    }
    assert_int_equal(s3_mpu_complete(cli, b, "big", id, parts, 3, false, NULL, &err), 0);
    free(id);
    size_t got;
    assert_int_equal(s3_get_object(cli, b, "big", 0, len + 1, NULL, back, &got, &err), 0);
    assert_int_equal(got, len);
    assert_memory_equal(back, data, len);
    struct s3_head h;
    assert_int_equal(s3_head_object(cli, b, "big", &h, &err), 0);
    assert_string_equal(s3_head_meta(&h, "mode"), "33188");
    char etag[80];
    snprintf(etag, sizeof etag, "%s", h.etag);
    s3_head_free(&h);

    /* UploadPartCopy of the big object in three ranges, pinned to its ETag */
    assert_int_equal(s3_mpu_create(cli, b, "big-copy", NULL, &id, &err), 0);
    for (int i = 0; i < 3; i++) {
        uint64_t first = i * psz, last = i < 2 ? first + psz - 1 : len - 1;
        parts[i].number = i + 1;
        int rc = s3_mpu_copy_part(cli, b, "big-copy", id, i + 1, b, "big", first, last, etag,
                                  parts[i].etag, &err);
        if (rc)
            fprintf(stderr, "copy part (if-match %s): %s %s\n", etag, err.code, err.message);
        assert_int_equal(rc, 0);
        assert_true(strlen(parts[i].etag) > 0);
    }
    assert_int_equal(s3_mpu_complete(cli, b, "big-copy", id, parts, 3, false, NULL, &err), 0);
    free(id);
    memset(back, 0, len);
    assert_int_equal(s3_get_object(cli, b, "big-copy", 0, len + 1, NULL, back, &got, &err), 0);
    assert_int_equal(got, len);
    assert_memory_equal(back, data, len);

    /* a stale ETag on a part copy fails; an aborted upload leaves nothing */
    assert_int_equal(s3_mpu_create(cli, b, "aborted", NULL, &id, &err), 0);
    char pe[80];
    int prc = s3_mpu_copy_part(cli, b, "aborted", id, 1, b, "big", 0, 99,
                               "0123456789abcdef0123456789abcdef", pe, &err);
    if (prc == 0) {
        /* radosgw 16.2 ignores both copy-if-match spellings on UploadPartCopy
         * (it honours them on CopyObject, tested above): reported, not faked.
         * The filesystem re-checks the source ETag after a multipart copy. */
        fprintf(stderr, "SERVER LIMITATION: this server ignores the ETag condition on "
                        "UploadPartCopy\n");
    } else {
        assert_int_equal(prc, -ESTALE);
    }
    assert_int_equal(s3_mpu_abort(cli, b, "aborted", id, &err), 0);
    assert_int_equal(s3_mpu_upload_part(cli, b, "aborted", id, 1,
                                        &(struct s3_body){.data = "x", .fd = -1, .len = 1}, pe,
                                        &err),
                     -ENOENT);
    free(id);
    assert_int_equal(s3_head_object(cli, b, "aborted", &h, &err), -ENOENT);
    free(data);
    free(back);
}

static void test_wrong_secret(void **state)
{
    (void)state;
    struct s3_client *bad = itest_client(NULL, "not-the-secret", 0);
    struct s3_bucket *list;
    size_t n;
    struct s3_error err;
    assert_int_equal(s3_list_buckets(bad, &list, &n, &err), -EACCES);
    assert_string_equal(err.code, "SignatureDoesNotMatch");
    assert_int_equal(err.attempts, 1); /* a 403 is final */
    char msg[512];
    fprintf(stderr, "wrong secret says: %s\n", s3_error_format(&err, msg, sizeof msg));
    itest_client_free(bad);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_unreachable(void **state)
{
    (void)state;
    /* a port nobody listens on: refused at once, retried, then a clear error */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(s, (struct sockaddr *)&a, &al);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    close(s);
    struct s3_client *c = itest_client(url, NULL, 3);
    struct s3_error err;
    double t0 = now_s();
    assert_int_equal(s3_head_bucket(c, "any", &err), -EHOSTUNREACH);
    assert_string_equal(err.code, "ConnectFailed");
    assert_int_equal(err.attempts, 3);
    assert_true(now_s() - t0 < 20); /* bounded, not a hang */
    itest_client_free(c);

    /* a server that accepts the connection and never answers: the stall
     * timeout (5 s here) ends each attempt */
    s = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_port = 0;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s, 16), 0);
    getsockname(s, (struct sockaddr *)&a, &al);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    c = itest_client(url, NULL, 2);
    t0 = now_s();
    assert_int_equal(s3_head_bucket(c, "any", &err), -ETIMEDOUT);
    assert_string_equal(err.code, "Timeout");
    assert_int_equal(err.attempts, 2);
    assert_true(now_s() - t0 < 30);
    close(s);
    itest_client_free(c);
}

int main(void)
{
    s3_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_put_get_head),
        cmocka_unit_test(test_odd_keys),
        cmocka_unit_test(test_list_many),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_object_headers_and_tags),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
