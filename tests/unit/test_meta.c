/* Unit tests for meta.c: s3fs-compatible attributes and xattrs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <cmocka.h>

#include "s3cfs/meta.h"

#define GiB (1024ULL * 1024 * 1024)

static const struct timespec last_mod = {1600000000, 250000000};

static struct meta_defaults defaults(void)
{
    struct meta_defaults d = {.uid = 1000,
                              .gid = 100,
                              .umask = 027,
                              .file_mode = 0644,
                              .dir_mode = 0755,
                              .time = {1234, 5},
                              .show_suid = 1};
    return d;
}

/* stat of one object with up to 8 name/value pairs, NULL-terminated. */
static void stat_of(struct stat *st, enum meta_kind kind, const char *const *kv)
{
    struct s3_meta m[8];
    size_t n = 0;
    for (; kv && kv[2 * n]; n++) {
        m[n].name = (char *)kv[2 * n];
        m[n].value = (char *)kv[2 * n + 1];
    }
    struct meta_defaults d = defaults();
    meta_to_stat(m, n, 100, &last_mod, kind, &d, st);
}

static void assert_ts(struct timespec ts, time_t sec, long nsec)
{
    assert_int_equal(ts.tv_sec, sec);
    assert_int_equal(ts.tv_nsec, nsec);
}

static void test_s3fs_file(void **state)
{
    (void)state;
    struct stat st;
    const char *kv[] = {"mode", "33188", "uid", "1001", "gid", "1002", "mtime", "1700000000", NULL};
    stat_of(&st, META_FILE, kv);
    assert_int_equal(st.st_mode, S_IFREG | 0644);
    assert_int_equal(st.st_uid, 1001);
    assert_int_equal(st.st_gid, 1002);
    assert_ts(st.st_mtim, 1700000000, 0);
    /* missing ctime and atime: Last-Modified */
    assert_ts(st.st_ctim, last_mod.tv_sec, last_mod.tv_nsec);
    assert_ts(st.st_atim, last_mod.tv_sec, last_mod.tv_nsec);
    assert_int_equal(st.st_nlink, 1);
    assert_int_equal(st.st_size, 100);
    assert_int_equal(st.st_blksize, META_BLKSIZE);
}

static void test_s3fs_dir_and_symlink(void **state)
{
    (void)state;
    struct stat st;
    const char *dir[] = {"mode", "16877", NULL};
    stat_of(&st, META_DIR, dir);
    assert_int_equal(st.st_mode, S_IFDIR | 0755);
    assert_int_equal(st.st_nlink, 1); /* subdirectories unknown */

    const char *link[] = {"mode", "41471", NULL};
    stat_of(&st, META_FILE, link);
    assert_int_equal(st.st_mode, S_IFLNK | 0777);
    assert_int_equal(st.st_nlink, 1);
}

static void test_times(void **state)
{
    (void)state;
    struct stat st;
    const char *kv[] = {"mtime", "1700000000.123456789",  "ctime", "1700000001.5",
                        "atime", "1700000002.0000000019", NULL};
    stat_of(&st, META_FILE, kv);
    assert_ts(st.st_mtim, 1700000000, 123456789);
    assert_ts(st.st_ctim, 1700000001, 500000000); /* fewer digits: a fraction */
    assert_ts(st.st_atim, 1700000002, 1);         /* below a nanosecond: dropped */

    const char *neg[] = {"mtime", "-5.000000001", NULL};
    stat_of(&st, META_FILE, neg);
    assert_ts(st.st_mtim, -5, 1);
}

static void test_missing_all(void **state)
{
    (void)state;
    struct meta_defaults d = defaults();
    struct stat st;
    meta_to_stat(NULL, 0, 0, &last_mod, META_FILE, &d, &st);
    assert_int_equal(st.st_mode, S_IFREG | 0640); /* 0644 & ~027 */
    assert_int_equal(st.st_uid, 1000);
    assert_int_equal(st.st_gid, 100);
    assert_ts(st.st_mtim, last_mod.tv_sec, last_mod.tv_nsec);
    assert_ts(st.st_ctim, last_mod.tv_sec, last_mod.tv_nsec);
    assert_ts(st.st_atim, last_mod.tv_sec, last_mod.tv_nsec);

    /* an implicit directory: no metadata, no Last-Modified */
    meta_to_stat(NULL, 0, 0, NULL, META_DIR, &d, &st);
    assert_int_equal(st.st_mode, S_IFDIR | 0750);
    assert_int_equal(st.st_nlink, 1);
    assert_ts(st.st_mtim, 1234, 5);
    assert_ts(st.st_atim, 1234, 5);
}

static void test_garbage_ignored(void **state)
{
    (void)state;
    static const char *const bad_numbers[] = {
        "",
        "abc",
        "33188x",
        " 33188",
        "33188 ",
        "+33188",
        "-33188",
        "3.5",
        "0x81a4",
        "99999999999999999999999999",
        "18446744073709551616",
    };
    static const char *const bad_times[] = {
        "",
        "abc",
        "12a",
        "1.",
        ".5",
        "1.2.3",
        "--1",
        "- 1",
        "+1",
        "1e9",
        "1. 5",
        "1.-5",
        "99999999999999999999",
        "9223372036854775808",
    };
    struct stat st;
    for (size_t i = 0; i < sizeof bad_numbers / sizeof *bad_numbers; i++) {
        const char *kv[] = {"mode", bad_numbers[i], "uid", bad_numbers[i],
                            "gid",  bad_numbers[i], NULL};
        stat_of(&st, META_FILE, kv);
        assert_int_equal(st.st_mode, S_IFREG | 0640);
        assert_int_equal(st.st_uid, 1000);
        assert_int_equal(st.st_gid, 100);
    }
    for (size_t i = 0; i < sizeof bad_times / sizeof *bad_times; i++) {
        const char *kv[] = {"mtime", bad_times[i], "ctime", bad_times[i],
                            "atime", bad_times[i], NULL};
        stat_of(&st, META_FILE, kv);
        assert_ts(st.st_mtim, last_mod.tv_sec, last_mod.tv_nsec);
        assert_ts(st.st_ctim, last_mod.tv_sec, last_mod.tv_nsec);
        assert_ts(st.st_atim, last_mod.tv_sec, last_mod.tv_nsec);
    }
    /* just past the ranges: a mode above 0177777, the "no owner" id */
    const char *kv[] = {"mode", "65536", "uid", "4294967295", "gid", "4294967296", NULL};
    stat_of(&st, META_FILE, kv);
    assert_int_equal(st.st_mode, S_IFREG | 0640);
    assert_int_equal(st.st_uid, 1000);
    assert_int_equal(st.st_gid, 100);
    /* and the largest accepted */
    const char *ok[] = {"mode", "65535", "uid", "4294967294", "mtime", "9223372036854775807", NULL};
    stat_of(&st, META_FILE, ok);
    assert_int_equal(st.st_mode, S_IFREG | 07777); /* type bits 017 are no type */
    assert_int_equal(st.st_uid, 4294967294u);
    assert_ts(st.st_mtim, INT64_MAX, 0);
}

static void test_kind_decides_type(void **state)
{
    (void)state;
    struct stat st;
    /* "name/" written by a foreign tool with a file mode */
    const char *file_mode[] = {"mode", "33188", NULL};
    stat_of(&st, META_DIR, file_mode);
    assert_int_equal(st.st_mode, S_IFDIR | 0644);
    /* a symlink mode on a marker is still a directory */
    const char *link_mode[] = {"mode", "41471", NULL};
    stat_of(&st, META_DIR, link_mode);
    assert_int_equal(st.st_mode, S_IFDIR | 0777);
    /* a plain object with a directory mode holds data: a file */
    const char *dir_mode[] = {"mode", "16877", NULL};
    stat_of(&st, META_FILE, dir_mode);
    assert_int_equal(st.st_mode, S_IFREG | 0755);
    /* no type bits: regular file, or directory by the key */
    const char *bare[] = {"mode", "420", NULL};
    stat_of(&st, META_FILE, bare);
    assert_int_equal(st.st_mode, S_IFREG | 0644);
    stat_of(&st, META_DIR, bare);
    assert_int_equal(st.st_mode, S_IFDIR | 0644);
    /* fifo kept; a device keeps its type and its rdev */
    char fifo[16], chr[16];
    snprintf(fifo, sizeof fifo, "%u", (unsigned)(S_IFIFO | 0600));
    snprintf(chr, sizeof chr, "%u", (unsigned)(S_IFCHR | 0600));
    const char *f[] = {"mode", fifo, NULL};
    stat_of(&st, META_FILE, f);
    assert_int_equal(st.st_mode, S_IFIFO | 0600);
    const char *c[] = {"mode", chr, "rdev", "259", NULL};
    stat_of(&st, META_FILE, c);
    assert_int_equal(st.st_mode, S_IFCHR | 0600);
    assert_int_equal(st.st_rdev, makedev(1, 3));
    const char *c_bad[] = {"mode", chr, "rdev", "-1", NULL};
    stat_of(&st, META_FILE, c_bad);
    assert_int_equal(st.st_rdev, 0);
}

static void test_umask_on_defaults_only(void **state)
{
    (void)state;
    struct stat st;
    const char *kv[] = {"mode", "33279", NULL}; /* 0100777 */
    stat_of(&st, META_FILE, kv);
    assert_int_equal(st.st_mode, S_IFREG | 0777);
    /* setuid/setgid are kept whatever the mount shows (rewrites keep them) */
    const char *setuid[] = {"mode", "36333", NULL}; /* 0106755 */
    stat_of(&st, META_FILE, setuid);
    assert_int_equal(st.st_mode, S_IFREG | 06755);
    struct s3_meta m = {.name = "mode", .value = "36333"};
    struct meta_defaults d = defaults();
    d.show_suid = 0;
    meta_to_stat(&m, 1, 0, &last_mod, META_FILE, &d, &st);
    assert_int_equal(st.st_mode, S_IFREG | 06755);
}

static void test_blocks(void **state)
{
    (void)state;
    static const struct {
        uint64_t size;
        blkcnt_t blocks;
    } cases[] = {{0, 0}, {1, 1}, {511, 1}, {512, 1}, {513, 2}, {5 * GiB, 5 * GiB / 512}};
    struct meta_defaults d = defaults();
    struct stat st;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        meta_to_stat(NULL, 0, cases[i].size, &last_mod, META_FILE, &d, &st);
        assert_int_equal(st.st_size, cases[i].size);
        assert_int_equal(st.st_blocks, cases[i].blocks);
    }
}

static const char *set_value(const struct meta_set *s, const char *name)
{
    for (size_t i = 0; i < s->nmeta; i++)
        if (strcmp(s->meta[i].name, name) == 0)
            return s->meta[i].value;
    return NULL;
}

/* meta_from_stat, then meta_to_stat of what it wrote. */
static void round_trip(const struct stat *in, enum meta_kind kind, struct stat *out)
{
    struct meta_set set;
    struct s3_meta m[META_SET_MAX];
    meta_from_stat(in, &set);
    for (size_t i = 0; i < set.nmeta; i++) {
        m[i].name = (char *)set.meta[i].name;
        m[i].value = (char *)set.meta[i].value;
    }
    struct meta_defaults d = defaults();
    meta_to_stat(m, set.nmeta, (uint64_t)in->st_size, &last_mod, kind, &d, out);
}

static void test_from_stat_strings(void **state)
{
    (void)state;
    struct stat st = {0};
    st.st_mode = S_IFREG | 0644;
    st.st_uid = 1001;
    st.st_gid = 4294967294u;
    st.st_mtim = (struct timespec){1700000000, 123456789};
    st.st_ctim = (struct timespec){1700000001, 0};
    st.st_atim = (struct timespec){-5, 1};
    struct meta_set set;
    meta_from_stat(&st, &set);
    assert_int_equal(set.nmeta, 6);
    assert_string_equal(set_value(&set, "mode"), "33188");
    assert_string_equal(set_value(&set, "uid"), "1001");
    assert_string_equal(set_value(&set, "gid"), "4294967294");
    assert_string_equal(set_value(&set, "mtime"), "1700000000.123456789");
    assert_string_equal(set_value(&set, "ctime"), "1700000001");
    assert_string_equal(set_value(&set, "atime"), "-5.000000001");

    st.st_mode = S_IFDIR | 0755;
    st.st_mtim.tv_nsec = UTIME_OMIT; /* never written as a time */
    meta_from_stat(&st, &set);
    assert_string_equal(set_value(&set, "mode"), "16877");
    assert_string_equal(set_value(&set, "mtime"), "1700000000");
    st.st_mode = S_IFLNK | 0777;
    meta_from_stat(&st, &set);
    assert_string_equal(set_value(&set, "mode"), "41471");
    assert_null(set_value(&set, "rdev"));
    st.st_mode = S_IFCHR | 0600;
    st.st_rdev = makedev(1, 3);
    meta_from_stat(&st, &set);
    assert_int_equal(set.nmeta, 7);
    assert_string_equal(set_value(&set, "rdev"), "259");
    meta_set_xattr(&set, "%7B%7D");
    assert_int_equal(set.nmeta, 8);
    assert_string_equal(set_value(&set, "rdev"), "259");
    st.st_mode = S_IFLNK | 0777;
    meta_from_stat(&st, &set);

    meta_set_xattr(&set, "%7B%7D");
    assert_int_equal(set.nmeta, 7);
    assert_string_equal(set_value(&set, "xattr"), "%7B%7D");
    meta_set_xattr(&set, "");
    assert_int_equal(set.nmeta, 6);
    meta_set_xattr(&set, NULL);
    assert_null(set_value(&set, "xattr"));
}

static void test_round_trip(void **state)
{
    (void)state;
    static const struct {
        mode_t mode;
        enum meta_kind kind;
    } cases[] = {{S_IFREG | 0644, META_FILE}, {S_IFREG | 04755, META_FILE},
                 {S_IFDIR | 01777, META_DIR}, {S_IFLNK | 0777, META_FILE},
                 {S_IFCHR | 0620, META_FILE}, {S_IFREG | 0, META_FILE}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct stat in = {0}, out;
        in.st_mode = cases[i].mode;
        in.st_uid = 0;
        in.st_gid = 65534;
        in.st_size = 513;
        in.st_mtim = (struct timespec){1700000000, 999999999};
        in.st_ctim = (struct timespec){1700000000, 1};
        in.st_atim = (struct timespec){0, 0};
        in.st_rdev = S_ISCHR(in.st_mode) ? makedev(136, 5) : 0;
        round_trip(&in, cases[i].kind, &out);
        assert_int_equal(out.st_mode, in.st_mode);
        assert_int_equal(out.st_rdev, in.st_rdev);
        assert_int_equal(out.st_uid, in.st_uid);
        assert_int_equal(out.st_gid, in.st_gid);
        assert_ts(out.st_mtim, in.st_mtim.tv_sec, in.st_mtim.tv_nsec);
        assert_ts(out.st_ctim, in.st_ctim.tv_sec, in.st_ctim.tv_nsec);
        assert_ts(out.st_atim, 0, 0);
        assert_int_equal(out.st_blocks, 2);
    }
}

/* ---- xattrs ---- */

static void assert_xattr(const struct meta_xattrs *x, const char *name, const void *value,
                         size_t len)
{
    char buf[2048];
    assert_int_equal(meta_xattr_get(x, name, NULL, 0), (ssize_t)len);
    assert_int_equal(meta_xattr_get(x, name, buf, sizeof buf), (ssize_t)len);
    assert_memory_equal(buf, value, len);
}

/* Encode x, parse the result, and check every attribute came back. */
static void assert_encode_round_trip(const struct meta_xattrs *x)
{
    struct sbuf enc = SBUF_INIT;
    struct meta_xattrs back;
    assert_int_equal(meta_xattr_encode(x, &enc), 0);
    assert_true(enc.len <= META_XATTR_MAX);
    assert_int_equal(meta_xattr_parse(sbuf_str(&enc), &back), 0);
    assert_int_equal(back.n, x->n);
    for (size_t i = 0; i < x->n; i++) {
        assert_string_equal(back.v[i].name, x->v[i].name);
        assert_xattr(&back, x->v[i].name, x->v[i].value, x->v[i].len);
    }
    meta_xattrs_free(&back);
    sbuf_free(&enc);
}

static void test_xattr_s3fs_example(void **state)
{
    (void)state;
    static const char s3fs[] = "%7B%22user.test%22%3A%22aGVsbG8%3D%22%7D";
    struct meta_xattrs x;
    assert_int_equal(meta_xattr_parse(s3fs, &x), 0);
    assert_int_equal(x.n, 1);
    assert_xattr(&x, "user.test", "hello", 5);
    /* written back exactly as s3fs writes it */
    struct sbuf enc = SBUF_INIT;
    assert_int_equal(meta_xattr_encode(&x, &enc), 0);
    assert_string_equal(sbuf_str(&enc), s3fs);
    sbuf_free(&enc);
    meta_xattrs_free(&x);

    /* unencoded JSON, whitespace, an empty value, unpadded base64 */
    assert_int_equal(
        meta_xattr_parse(" { \"user.a\" : \"YQ==\" ,\"user.b\":\"\",\"c\":\"YQ\"}\n", &x), 0);
    assert_int_equal(x.n, 3);
    assert_xattr(&x, "user.a", "a", 1);
    assert_xattr(&x, "user.b", "", 0);
    assert_xattr(&x, "c", "a", 1);
    meta_xattrs_free(&x);
}

static void test_xattr_empty(void **state)
{
    (void)state;
    static const char *const empty[] = {NULL, "", "{}", "%7B%7D", " { } "};
    for (size_t i = 0; i < sizeof empty / sizeof *empty; i++) {
        struct meta_xattrs x;
        assert_int_equal(meta_xattr_parse(empty[i], &x), 0);
        assert_int_equal(x.n, 0);
        meta_xattrs_free(&x);
    }
    struct meta_xattrs x = META_XATTRS_INIT;
    struct sbuf enc = SBUF_INIT;
    assert_int_equal(meta_xattr_encode(&x, &enc), 0);
    assert_int_equal(enc.len, 0); /* the header is left out */
    assert_int_equal(meta_xattr_list(&x, NULL, 0), 0);
    assert_int_equal(meta_xattr_get(&x, "user.a", NULL, 0), -ENODATA);
    assert_int_equal(meta_xattr_remove(&x, "user.a"), -ENODATA);
}

static void test_xattr_binary(void **state)
{
    (void)state;
    static const unsigned char bin[] = {0, 0xff, 'a', 0, 0x80, 0xfb, 0xff, 0xfe, 0};
    struct meta_xattrs x = META_XATTRS_INIT;
    char name[32];
    /* every length 0..9 covers each padding case */
    for (size_t len = 0; len <= sizeof bin; len++) {
        snprintf(name, sizeof name, "user.bin%zu", len);
        assert_int_equal(meta_xattr_set(&x, name, bin, len, 0), 0);
    }
    assert_int_equal(meta_xattr_set(&x, "user.q\"uote\\back\x01", "v", 1, 0), 0);
    assert_int_equal(meta_xattr_set(&x, "user.\xc3\xa9t\xc3\xa9", "\0", 1, 0), 0);
    assert_int_equal(meta_xattr_set(&x, "trusted.other", "x", 1, 0), 0);
    assert_encode_round_trip(&x);
    meta_xattrs_free(&x);
}

static void test_xattr_escaped_names(void **state)
{
    (void)state;
    struct meta_xattrs x;
    const char *json = "{\"user.q\\\"x\\\\y\\/z\\u00e9\\ud83d\\ude00\\t\":\"YQ==\","
                       "\"user.\\u20AC\":\"Yg==\"}";
    assert_int_equal(meta_xattr_parse(json, &x), 0);
    assert_int_equal(x.n, 2);
    assert_xattr(&x, "user.q\"x\\y/z\xc3\xa9\xf0\x9f\x98\x80\t", "a", 1);
    assert_xattr(&x, "user.\xe2\x82\xac", "b", 1);
    meta_xattrs_free(&x);
}

static void test_xattr_set_get_list_remove(void **state)
{
    (void)state;
    struct meta_xattrs x = META_XATTRS_INIT;
    char buf[64];
    assert_int_equal(meta_xattr_set(&x, "user.a", "1", 1, 0), 0);
    assert_int_equal(meta_xattr_set(&x, "user.b", "22", 2, XATTR_CREATE), 0);
    assert_int_equal(meta_xattr_set(&x, "user.c", "333", 3, 0), 0);
    assert_int_equal(meta_xattr_set(&x, "user.b", "x", 1, XATTR_CREATE), -EEXIST);
    assert_int_equal(meta_xattr_set(&x, "user.d", "x", 1, XATTR_REPLACE), -ENODATA);
    assert_int_equal(meta_xattr_set(&x, "user.a", "11", 2, XATTR_REPLACE), 0);
    assert_int_equal(meta_xattr_set(&x, "user.a", "x", 1, 0x100), -EINVAL);
    assert_int_equal(meta_xattr_set(&x, "", "x", 1, 0), -EINVAL);
    char longname[META_XATTR_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(meta_xattr_set(&x, longname, "x", 1, 0), -ERANGE);
    assert_int_equal(x.n, 3);
    assert_xattr(&x, "user.a", "11", 2);

    assert_int_equal(meta_xattr_get(&x, "user.c", buf, 2), -ERANGE);
    assert_int_equal(meta_xattr_get(&x, "user.z", buf, sizeof buf), -ENODATA);
    static const char names[] = "user.a\0user.b\0user.c";
    assert_int_equal(meta_xattr_list(&x, NULL, 0), sizeof names);
    assert_int_equal(meta_xattr_list(&x, buf, sizeof names - 1), -ERANGE);
    assert_int_equal(meta_xattr_list(&x, buf, sizeof buf), sizeof names);
    assert_memory_equal(buf, names, sizeof names);

    assert_int_equal(meta_xattr_remove(&x, "user.b"), 0);
    assert_int_equal(meta_xattr_remove(&x, "user.b"), -ENODATA);
    assert_int_equal(meta_xattr_get(&x, "user.b", NULL, 0), -ENODATA);
    static const char left[] = "user.a\0user.c";
    assert_int_equal(meta_xattr_list(&x, buf, sizeof buf), sizeof left);
    assert_memory_equal(buf, left, sizeof left);
    assert_encode_round_trip(&x);
    meta_xattrs_free(&x);

    /* a repeated name in the header: the last one wins */
    assert_int_equal(meta_xattr_parse("{\"a\":\"YQ==\",\"b\":\"\",\"a\":\"Yg==\"}", &x), 0);
    assert_int_equal(x.n, 2);
    assert_xattr(&x, "a", "b", 1);
    meta_xattrs_free(&x);
}

static void test_xattr_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        /* truncated or broken JSON */
        "{",
        "{\"user.a\"",
        "{\"user.a\":",
        "{\"user.a\":\"YQ==",
        "{\"user.a\":\"YQ==\"",
        "{\"user.a\":\"YQ==\"}x",
        "{\"user.a\":\"YQ==\",}",
        "{\"user.a\" \"YQ==\"}",
        "{,}",
        "[\"a\"]",
        "\"a\"",
        "{\"user.a\":YQ==}",
        "{\"user.a\":\"YQ==\"}}",
        "}",
        "{\"\":\"YQ==\"}",
        "{'a':'YQ=='}",
        "{\"a\":\"YQ==\" \"b\":\"Yg==\"}",
        /* bad escapes and characters in strings */
        "{\"a\\x\":\"YQ==\"}",
        "{\"a\\u12\":\"YQ==\"}",
        "{\"a\\u12g4\":\"YQ==\"}",
        "{\"a\\ud800\":\"YQ==\"}",
        "{\"a\\ud800\\u0041\":\"YQ==\"}",
        "{\"a\\udc00\":\"YQ==\"}",
        "{\"a\\u0000\":\"YQ==\"}",
        "{\"a\\",
        "{\"a%0Ab\":\"YQ==\"}",
        "{\"a%00\":\"YQ==\"}",
        /* bad base64 */
        "{\"a\":\"Y\"}",
        "{\"a\":\"YQ=\"}",
        "{\"a\":\"Y===\"}",
        "{\"a\":\"YQ=a\"}",
        "{\"a\":\"Y!==\"}",
        "{\"a\":\"=YQ=\"}",
        "{\"a\":\"YQ==YQ==\"}",
        "{\"a\":\"YQ ==\"}",
        "{\"a\":\"====\"}",
        /* bad %-escapes */
        "%7B%2",
        "%7",
        "%ZZ",
        "%7B%22a%22%3A%22YQ%3D%3D%22%7",
        "%%7B%7D",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct meta_xattrs x;
        int rc = meta_xattr_parse(bad[i], &x);
        if (rc != -EINVAL)
            fail_msg("\"%s\" gave %d", bad[i], rc);
        assert_int_equal(x.n, 0);
        meta_xattrs_free(&x);
    }
    /* a name too long for an xattr is malformed too */
    struct sbuf json = SBUF_INIT;
    sbuf_append_str(&json, "{\"");
    for (int i = 0; i <= META_XATTR_NAME_MAX; i++)
        sbuf_append_char(&json, 'n');
    sbuf_append_str(&json, "\":\"YQ==\"}");
    struct meta_xattrs x;
    assert_int_equal(meta_xattr_parse(sbuf_str(&json), &x), -EINVAL);
    assert_int_equal(x.n, 0);
    meta_xattrs_free(&x);
    sbuf_free(&json);
}

/* Every prefix of a valid header either parses or is -EINVAL: never a
 * crash or a read past the end (run under ASan). */
static void test_xattr_every_prefix(void **state)
{
    (void)state;
    static const char full[] = "%7B%22user.a%22%3A%22AP8%3D%22%2C%22user.%5Cu00e9%22%3A%22%22%7D";
    char prefix[sizeof full];
    for (size_t n = 0; n < sizeof full; n++) {
        memcpy(prefix, full, n);
        prefix[n] = '\0';
        struct meta_xattrs x;
        int rc = meta_xattr_parse(prefix, &x);
        assert_true(rc == 0 || rc == -EINVAL);
        if (n == 0 || n == sizeof full - 1)
            assert_int_equal(rc, 0);
        else
            assert_int_equal(rc, -EINVAL);
        meta_xattrs_free(&x);
    }
    struct meta_xattrs x;
    assert_int_equal(meta_xattr_parse(full, &x), 0);
    assert_xattr(&x, "user.a", "\0\xff", 2);
    assert_xattr(&x, "user.\xc3\xa9", "", 0);
    meta_xattrs_free(&x);
}

static void test_xattr_too_big(void **state)
{
    (void)state;
    struct meta_xattrs x = META_XATTRS_INIT;
    static unsigned char zeros[META_XATTR_MAX + 1];
    /* larger than the limit on its own: refused before any copy */
    assert_int_equal(meta_xattr_set(&x, "user.big", zeros, sizeof zeros, 0), -E2BIG);
    assert_int_equal(meta_xattr_set(&x, "user.keep", "v", 1, 0), 0);
    /* fill until the encoded set no longer fits; the set stays as it was */
    int rc = 0;
    char name[32];
    size_t i;
    for (i = 0; rc == 0 && i < 100; i++) {
        snprintf(name, sizeof name, "user.%zu", i);
        rc = meta_xattr_set(&x, name, zeros, 200, 0);
    }
    assert_int_equal(rc, -E2BIG);
    assert_int_equal(x.n, i); /* user.keep plus the i - 1 that fit */
    assert_int_equal(meta_xattr_get(&x, name, NULL, 0), -ENODATA);
    assert_encode_round_trip(&x);
    /* growing an existing value past the limit keeps the old value */
    assert_int_equal(meta_xattr_set(&x, "user.keep", zeros, 400, 0), -E2BIG);
    assert_xattr(&x, "user.keep", "v", 1);
    assert_int_equal(x.n, i);
    meta_xattrs_free(&x);

    /* a set parsed from another tool may be over our limit: encode says so
     * and leaves out as it was */
    struct sbuf json = SBUF_INIT, enc = SBUF_INIT;
    sbuf_append_str(&json, "{\"user.big\":\"");
    for (int k = 0; k < META_XATTR_MAX; k++)
        sbuf_append_str(&json, "AAAA");
    sbuf_append_str(&json, "\"}");
    assert_int_equal(meta_xattr_parse(sbuf_str(&json), &x), 0);
    sbuf_append_str(&enc, "keep");
    assert_int_equal(meta_xattr_encode(&x, &enc), -E2BIG);
    assert_string_equal(sbuf_str(&enc), "keep");
    meta_xattrs_free(&x);
    sbuf_free(&json);
    sbuf_free(&enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s3fs_file),
        cmocka_unit_test(test_s3fs_dir_and_symlink),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_missing_all),
        cmocka_unit_test(test_garbage_ignored),
        cmocka_unit_test(test_kind_decides_type),
        cmocka_unit_test(test_umask_on_defaults_only),
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_from_stat_strings),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_xattr_s3fs_example),
        cmocka_unit_test(test_xattr_empty),
        cmocka_unit_test(test_xattr_binary),
        cmocka_unit_test(test_xattr_escaped_names),
        cmocka_unit_test(test_xattr_set_get_list_remove),
        cmocka_unit_test(test_xattr_malformed),
        cmocka_unit_test(test_xattr_every_prefix),
        cmocka_unit_test(test_xattr_too_big),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
