/* fuzz_meta: s3fs metadata as another program may have written it. The
 * input is up to seven values separated by '\n', in the order mode, uid,
 * gid, mtime, ctime, atime, xattr; each goes through meta_to_stat (both
 * kinds) and the last through meta_xattr_parse, whose result must encode
 * and parse back to the same set. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "s3cfs/meta.h"

static const char *const names[] = {"mode", "uid", "gid", "mtime", "ctime", "atime", "xattr"};
#define NFIELDS (sizeof names / sizeof names[0])

static void check_time(const struct timespec *ts)
{
    FUZZ_CHECK(ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000);
}

static void check_stat(const struct s3_meta *m, size_t n, enum meta_kind kind)
{
    const struct meta_defaults d = {.uid = 1000,
                                    .gid = 1000,
                                    .umask = 022,
                                    .file_mode = 0644,
                                    .dir_mode = 0755,
                                    .time = {1700000000, 5}};
    const struct timespec lm = {1600000000, 0};
    struct stat st;
    meta_to_stat(m, n, 12345, n % 2 ? &lm : NULL, kind, &d, &st);
    mode_t type = st.st_mode & S_IFMT;
    if (kind == META_DIR) /* 1: subdirectories unknown here (meta.h) */
        FUZZ_CHECK(type == S_IFDIR && st.st_nlink == 1);
    else
        FUZZ_CHECK(type == S_IFREG || type == S_IFLNK || type == S_IFIFO || type == S_IFSOCK ||
                   type == S_IFCHR || type == S_IFBLK);
    FUZZ_CHECK(st.st_uid != (uid_t)-1 && st.st_gid != (gid_t)-1);
    check_time(&st.st_mtim);
    check_time(&st.st_ctim);
    check_time(&st.st_atim);
    FUZZ_CHECK(st.st_size == 12345 && st.st_blocks == 25 && st.st_blksize == META_BLKSIZE);
}

static bool same_set(const struct meta_xattrs *a, const struct meta_xattrs *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].name, b->v[i].name) != 0 || a->v[i].len != b->v[i].len ||
            (a->v[i].len && memcmp(a->v[i].value, b->v[i].value, a->v[i].len) != 0))
            return false;
    return true;
}

static void check_xattrs(const struct meta_xattrs *x)
{
    char list[1 << 14];
    ssize_t total = meta_xattr_list(x, NULL, 0);
    FUZZ_CHECK(total >= 0);
    if ((size_t)total <= sizeof list)
        FUZZ_CHECK(meta_xattr_list(x, list, sizeof list) == total);
    for (size_t i = 0; i < x->n; i++) {
        FUZZ_CHECK(x->v[i].name[0] && strlen(x->v[i].name) <= META_XATTR_NAME_MAX);
        FUZZ_CHECK(x->v[i].value != NULL);
        FUZZ_CHECK(meta_xattr_get(x, x->v[i].name, NULL, 0) == (ssize_t)x->v[i].len);
        for (size_t k = i + 1; k < x->n; k++) /* a repeated name kept its last value only */
            FUZZ_CHECK(strcmp(x->v[i].name, x->v[k].name) != 0);
    }
}

static void fuzz_xattr(const char *encoded)
{
    struct meta_xattrs x, back;
    int rc = meta_xattr_parse(encoded, &x);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc) {
        FUZZ_CHECK(x.n == 0);
        meta_xattrs_free(&x);
        return;
    }
    check_xattrs(&x);
    struct sbuf enc = SBUF_INIT;
    rc = meta_xattr_encode(&x, &enc);
    FUZZ_CHECK(rc == 0 || rc == -E2BIG);
    if (rc == 0) {
        FUZZ_CHECK(enc.len <= META_XATTR_MAX);
        FUZZ_CHECK(meta_xattr_parse(sbuf_str(&enc), &back) == 0);
        FUZZ_CHECK(same_set(&x, &back));
        meta_xattrs_free(&back);
    }
    sbuf_free(&enc);
    meta_xattrs_free(&x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct s3_meta m[NFIELDS];
    size_t n = 0;
    for (char *save, *v = text; v && n < NFIELDS; v = save, n++) {
        save = strchr(v, '\n');
        if (save)
            *save++ = '\0';
        m[n].name = (char *)names[n];
        m[n].value = v;
    }
    check_stat(m, n, META_FILE);
    check_stat(m, n, META_DIR);
    fuzz_xattr(n == NFIELDS ? m[NFIELDS - 1].value : text);
    free(text);
    return 0;
}
