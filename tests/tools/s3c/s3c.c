/* s3c - a small command-line S3 client on the project's own library, for the
 * demo, benchmarks and shell tests. Credentials and endpoint come from the
 * same chain the filesystem uses (environment, profile, passwd file). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "s3cfs/log.h"
#include "s3cfs/s3.h"

static struct s3_client *cli;

static int fail(const char *what, int rc, const struct s3_error *err)
{
    char msg[600];
    fprintf(stderr, "s3c: %s: %s (%s)\n", what, s3_error_format(err, msg, sizeof msg),
            strerror(-rc));
    return 1;
}

static int cmd_buckets(void)
{
    struct s3_bucket *b;
    size_t n;
    struct s3_error err;
    int rc = s3_list_buckets(cli, &b, &n, &err);
    if (rc)
        return fail("list buckets", rc, &err);
    for (size_t i = 0; i < n; i++)
        printf("%s\n", b[i].name);
    s3_buckets_free(b, n);
    return 0;
}

static int print_page(const struct s3_list_page *p, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < p->nprefixes; i++)
        printf("%12s  %s\n", "DIR", p->prefixes[i]);
    for (size_t i = 0; i < p->nobjects; i++)
        printf("%12" PRIu64 "  %s\n", p->objects[i].size, p->objects[i].key);
    return 0;
}

static int cmd_ls(const char *bucket, const char *prefix, const char *delim)
{
    struct s3_error err;
    int rc = s3_list_all(cli, bucket, prefix, delim, print_page, NULL, &err);
    return rc ? fail("list", rc, &err) : 0;
}

static int cmd_put(const char *bucket, const char *key, const char *file)
{
    int fd = open(file, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        perror(file);
        return 1;
    }
    struct s3_body b = {.fd = fd, .len = (uint64_t)st.st_size};
    struct s3_error err;
    char etag[80];
    int rc = s3_put_object(cli, bucket, key, &b, NULL, etag, &err);
    close(fd);
    if (rc)
        return fail("put", rc, &err);
    printf("%s\n", etag);
    return 0;
}

static int cmd_get(const char *bucket, const char *key, const char *file)
{
    struct s3_head h;
    struct s3_error err;
    int rc = s3_head_object(cli, bucket, key, &h, &err);
    if (rc)
        return fail("head", rc, &err);
    char *buf = malloc(h.size + 1);
    size_t got = 0;
    rc = buf ? s3_get_object(cli, bucket, key, 0, h.size + 1, h.etag, buf, &got, &err) : -ENOMEM;
    s3_head_free(&h);
    if (rc) {
        free(buf);
        return fail("get", rc, &err);
    }
    FILE *f = strcmp(file, "-") == 0 ? stdout : fopen(file, "wb");
    int bad = !f || fwrite(buf, 1, got, f) != got;
    if (f && f != stdout)
        bad |= fclose(f) != 0;
    free(buf);
    if (bad)
        perror(file);
    return bad;
}

static int cmd_head(const char *bucket, const char *key)
{
    struct s3_head h;
    struct s3_error err;
    int rc = s3_head_object(cli, bucket, key, &h, &err);
    if (rc)
        return fail("head", rc, &err);
    printf("size %" PRIu64 "\netag %s\ncontent-type %s\nmtime %ld\n", h.size, h.etag,
           h.content_type, (long)h.mtime.tv_sec);
    for (size_t i = 0; i < h.nmeta; i++)
        printf("meta %s %s\n", h.meta[i].name, h.meta[i].value);
    s3_head_free(&h);
    return 0;
}

static int cmd_cp(const char *sb, const char *sk, const char *db, const char *dk)
{
    struct s3_error err;
    char etag[80];
    int rc = s3_copy_object(cli, sb, sk, db, dk, NULL, etag, &err);
    if (rc)
        return fail("copy", rc, &err);
    printf("%s\n", etag);
    return 0;
}

/* Server-side multipart copy: UploadPartCopy parts of part_mib MiB. */
static int cmd_mpcopy(const char *sb, const char *sk, const char *db, const char *dk, int part_mib)
{
    struct s3_head h;
    struct s3_error err;
    int rc = s3_head_object(cli, sb, sk, &h, &err);
    if (rc)
        return fail("head", rc, &err);
    uint64_t psz = (uint64_t)part_mib << 20, size = h.size;
    size_t n = (size_t)((size + psz - 1) / psz);
    struct s3_part *parts = calloc(n ? n : 1, sizeof *parts);
    char *id = NULL;
    rc = s3_mpu_create(cli, db, dk, NULL, &id, &err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint64_t first = i * psz, last = first + psz > size ? size - 1 : first + psz - 1;
        parts[i].number = (int)i + 1;
        rc = s3_mpu_copy_part(cli, db, dk, id, (int)i + 1, sb, sk, first, last, h.etag,
                              parts[i].etag, &err);
    }
    if (rc == 0)
        rc = s3_mpu_complete(cli, db, dk, id, parts, n, false, NULL, &err);
    else if (id)
        s3_mpu_abort(cli, db, dk, id, &(struct s3_error){0});
    free(id);
    free(parts);
    s3_head_free(&h);
    if (rc)
        return fail("multipart copy", rc, &err);
    printf("%zu parts\n", n);
    return 0;
}

struct collected {
    char **keys;
    size_t n, cap;
};

static int collect(const struct s3_list_page *p, void *arg)
{
    struct collected *c = arg;
    for (size_t i = 0; i < p->nobjects; i++) {
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 1024;
            c->keys = realloc(c->keys, c->cap * sizeof *c->keys);
        }
        c->keys[c->n++] = strdup(p->objects[i].key);
    }
    return 0;
}

/* Delete everything under a prefix with DeleteObjects, 1000 keys a request. */
static int cmd_rmr(const char *bucket, const char *prefix)
{
    struct collected c = {0};
    struct s3_error err;
    int rc = s3_list_all(cli, bucket, prefix, NULL, collect, &c, &err);
    size_t failed = 0;
    for (size_t i = 0; rc == 0 && i < c.n; i += 1000) {
        size_t m = c.n - i < 1000 ? c.n - i : 1000;
        struct s3_delete_error *e;
        size_t ne;
        rc =
            s3_delete_objects(cli, bucket, (const char *const *)c.keys + i, NULL, m, &e, &ne, &err);
        for (size_t j = 0; rc == 0 && j < ne; j++)
            fprintf(stderr, "s3c: delete %s: %s %s\n", e[j].key, e[j].code, e[j].message);
        failed += rc == 0 ? ne : 0;
        if (rc == 0)
            s3_delete_errors_free(e, ne);
    }
    for (size_t i = 0; i < c.n; i++)
        free(c.keys[i]);
    free(c.keys);
    if (rc)
        return fail("delete", rc, &err);
    printf("%zu deleted, %zu failed\n", c.n - failed, failed);
    return failed != 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: s3c [--endpoint URL] [--region R] [-v] COMMAND\n"
                    "  buckets | mb B | rb B | ls B [PREFIX] | find B [PREFIX]\n"
                    "  put B KEY FILE | get B KEY FILE|- | head B KEY | rm B KEY\n"
                    "  cp SB SKEY DB DKEY | mpcopy SB SKEY DB DKEY PART_MIB | rmr B PREFIX\n");
    return 2;
}

static int dispatch(int argc, char **argv)
{
    struct s3_error err;
    const char *c = argv[0];
#define NEED(n)                                                                                    \
    if (argc != (n) + 1)                                                                           \
        return usage();
    if (strcmp(c, "buckets") == 0) {
        NEED(0) return cmd_buckets();
    } else if (strcmp(c, "mb") == 0) {
        NEED(1) int rc = s3_create_bucket(cli, argv[1], &err);
        return rc ? fail("create bucket", rc, &err) : 0;
    } else if (strcmp(c, "rb") == 0) {
        NEED(1) int rc = s3_delete_bucket(cli, argv[1], &err);
        return rc ? fail("delete bucket", rc, &err) : 0;
    } else if (strcmp(c, "ls") == 0 && (argc == 2 || argc == 3)) {
        return cmd_ls(argv[1], argc == 3 ? argv[2] : NULL, "/");
    } else if (strcmp(c, "find") == 0 && (argc == 2 || argc == 3)) {
        return cmd_ls(argv[1], argc == 3 ? argv[2] : NULL, NULL);
    } else if (strcmp(c, "put") == 0) {
        NEED(3) return cmd_put(argv[1], argv[2], argv[3]);
    } else if (strcmp(c, "get") == 0) {
        NEED(3) return cmd_get(argv[1], argv[2], argv[3]);
    } else if (strcmp(c, "head") == 0) {
        NEED(2) return cmd_head(argv[1], argv[2]);
    } else if (strcmp(c, "cp") == 0) {
        NEED(4) return cmd_cp(argv[1], argv[2], argv[3], argv[4]);
    } else if (strcmp(c, "mpcopy") == 0) {
        NEED(5) return cmd_mpcopy(argv[1], argv[2], argv[3], argv[4], atoi(argv[5]));
    } else if (strcmp(c, "rm") == 0) {
        NEED(2) int rc = s3_delete_object(cli, argv[1], argv[2], NULL, &err);
        return rc ? fail("delete", rc, &err) : 0;
    } else if (strcmp(c, "rmr") == 0) {
        NEED(2) return cmd_rmr(argv[1], argv[2]);
    }
    return usage();
#undef NEED
}

int main(int argc, char **argv)
{
    struct s3_client_options o = {.endpoint = getenv("S3_ENDPOINT")};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc)
            o.endpoint = argv[++i];
        else if (strcmp(argv[i], "--region") == 0 && i + 1 < argc)
            o.region = argv[++i];
        else if (strcmp(argv[i], "-v") == 0)
            log_set_level(LOGLVL_DEBUG);
        else
            break;
    }
    if (i >= argc)
        return dispatch(1, (char *[]){"help", NULL});
    s3_global_init();
    struct creds_options co = {.no_imds = true};
    struct creds_provider *cp;
    struct s3_error err;
    int rc = creds_provider_new(&co, &cp, &err);
    if (rc)
        return fail("credentials", rc, &err);
    o.creds = cp;
    rc = s3_client_new(&o, &cli, &err);
    if (rc)
        return fail("client", rc, &err);
    rc = dispatch(argc - i, argv + i);
    s3_client_free(cli);
    creds_provider_free(cp);
    return rc;
}
