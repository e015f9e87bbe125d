/* Unit tests for the credentials chain: its order, the files it reads, the
 * passwd-file permission rule, and IMDSv2 against a fake metadata server on
 * 127.0.0.1. Every test runs in a fresh HOME with the AWS_* variables
 * cleared and instance metadata disabled unless the test points the
 * endpoint at its own server, so 169.254.169.254 is never contacted. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "s3cfs/buf.h"
#include "s3cfs/credentials.h"

static const char *const aws_vars[] = {
    "AWS_ACCESS_KEY_ID",   "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",   "AWS_PROFILE",
    "AWS_CONFIG_FILE",     "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_DEFAULT_PROFILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
};

struct fixture {
    char home[64];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->home, sizeof fx->home, "/tmp/s3cfs-creds-XXXXXX");
    if (!mkdtemp(fx->home))
        return -1;
    setenv("HOME", fx->home, 1);
    for (size_t i = 0; i < sizeof aws_vars / sizeof aws_vars[0]; i++)
        unsetenv(aws_vars[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    *state = fx;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    nftw(fx->home, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* Writes HOME/rel with the given mode (umask does not apply) into path. */
static void write_file(const struct fixture *fx, const char *rel, mode_t mode, const char *text,
                       char *path, size_t size)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/.aws", fx->home);
    mkdir(dir, 0700);
    snprintf(path, size, "%s/%s", fx->home, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void write_home(const struct fixture *fx, const char *rel, mode_t mode, const char *text)
{
    char path[256];
    write_file(fx, rel, mode, text, path, sizeof path);
}

/* The provider's current keys are these, and its source names no secret. */
static void expect_keys(struct creds_provider *p, const char *access, const char *secret,
                        const char *token)
{
    struct s3_creds c;
    struct s3_error err;
    assert_int_equal(creds_get(p, &c, &err), 0);
    assert_string_equal(c.access_key, access);
    assert_string_equal(c.secret_key, secret);
    assert_string_equal(c.session_token, token);
    assert_null(strstr(creds_source(p), c.secret_key));
    if (c.session_token[0])
        assert_null(strstr(creds_source(p), c.session_token));
}

static int provider_new(const struct creds_options *opt, struct creds_provider **p,
                        struct s3_error *err)
{
    static const struct creds_options none;
    return creds_provider_new(opt ? opt : &none, p, err);
}

static void test_options_win_over_env(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SENV", 1);
    struct creds_options opt = {.access_key = "AKOPT", .secret_key = "SOPT", .session_token = "T"};
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(&opt, &p, &err), 0);
    assert_string_equal(creds_source(p), "options");
    expect_keys(p, "AKOPT", "SOPT", "T");
    creds_provider_free(p);
}

static void test_options_missing_half(void **state)
{
    (void)state;
    struct creds_provider *p = (void *)1;
    struct s3_error err;
    struct creds_options only_access = {.access_key = "AKOPT"};
    assert_int_equal(provider_new(&only_access, &p, &err), -EINVAL);
    assert_null(p);
    assert_string_equal(err.code, "CredentialsError");
    assert_non_null(strstr(err.message, "options"));
    struct creds_options only_secret = {.secret_key = "SOPT"};
    assert_int_equal(provider_new(&only_secret, &p, &err), -EINVAL);
    assert_null(strstr(err.message, "SOPT"));
    struct creds_options only_token = {.session_token = "T"};
    assert_int_equal(provider_new(&only_token, &p, &err), -EINVAL);
}

static void test_env_over_profile(void **state)
{
    write_home(*state, ".aws/credentials", 0600,
               "[default]\naws_access_key_id = AKPROF\naws_secret_access_key = SPROF\n");
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SENV", 1);
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(NULL, &p, &err), 0);
    assert_string_equal(creds_source(p), "environment");
    expect_keys(p, "AKENV", "SENV", "");
    creds_provider_free(p);
}

static void test_env_session_token(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "ASIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SENV", 1);
    setenv("AWS_SESSION_TOKEN", "TOKENENV", 1);
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(NULL, &p, &err), 0);
    expect_keys(p, "ASIAENV", "SENV", "TOKENENV");
    creds_provider_free(p);
}

static void test_env_missing_half(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(NULL, &p, &err), -EINVAL);
    assert_non_null(strstr(err.message, "AWS_SECRET_ACCESS_KEY"));
}

static const char two_profiles[] = "# shared credentials\n"
                                   "[default]\n"
                                   "aws_access_key_id=AKDEF\n"
                                   "aws_secret_access_key=SDEF\n"
                                   "\n"
                                   "; the work account\n"
                                   "[work]\n"
                                   "aws_access_key_id   =   AKWORK  \n"
                                   "aws_secret_access_key\t= SWORK\n"
                                   "aws_session_token = TWORK\n";

static void test_aws_profile_selects(void **state)
{
    write_home(*state, ".aws/credentials", 0600, two_profiles);
    setenv("AWS_PROFILE", "work", 1);
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(NULL, &p, &err), 0);
    assert_string_equal(creds_source(p), "profile work");
    expect_keys(p, "AKWORK", "SWORK", "TWORK");
    creds_provider_free(p);

    /* the option beats AWS_PROFILE */
    struct creds_options opt = {.profile = "default"};
    assert_int_equal(provider_new(&opt, &p, &err), 0);
    assert_string_equal(creds_source(p), "profile default");
    expect_keys(p, "AKDEF", "SDEF", "");
    creds_provider_free(p);
}

static void test_profile_missing(void **state)
{
    write_home(*state, ".aws/credentials", 0600, two_profiles);
    setenv("AWS_PROFILE", "ghost", 1);
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(NULL, &p, &err), -ENOENT);
    assert_non_null(strstr(err.message, "profile ghost not found"));
}

static const char config_file[] = "[default]\n"
                                  "region = eu-west-1\n"
                                  "[profile x]\n"
                                  "region=us-east-2\n"
                                  "s3 =\n"
                                  "    max_concurrent_requests = 20\n"
                                  "aws_access_key_id = AKCONF\n"
                                  "aws_secret_access_key = SCONF\n"
                                  "[x]\n"
                                  "aws_access_key_id = WRONG\n"
                                  "aws_secret_access_key = WRONG\n";

static void test_profile_only_in_config(void **state)
{
    write_home(*state, ".aws/credentials", 0600, two_profiles);
    write_home(*state, ".aws/config", 0600, config_file);
    setenv("AWS_PROFILE", "x", 1);
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(NULL, &p, &err), 0);
    assert_string_equal(creds_source(p), "profile x");
    expect_keys(p, "AKCONF", "SCONF", "");
    creds_provider_free(p);
}

static void test_profile_files_from_env(void **state)
{
    struct fixture *fx = *state;
    char path[256];
    write_file(fx, "elsewhere", 0600,
               "[default]\naws_access_key_id=AKELSE\naws_secret_access_key=S\n", path, sizeof path);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(NULL, &p, &err), 0);
    expect_keys(p, "AKELSE", "S", "");
    creds_provider_free(p);
}

static void test_profile_region(void **state)
{
    write_home(*state, ".aws/config", 0600, config_file);
    char region[64];
    assert_int_equal(creds_profile_region(NULL, region, sizeof region), 0);
    assert_string_equal(region, "eu-west-1");
    assert_int_equal(creds_profile_region("x", region, sizeof region), 0);
    assert_string_equal(region, "us-east-2");
    assert_int_equal(creds_profile_region("nope", region, sizeof region), -ENOENT);
    setenv("AWS_PROFILE", "x", 1);
    assert_int_equal(creds_profile_region(NULL, region, sizeof region), 0);
    assert_string_equal(region, "us-east-2");
}

static void test_malformed_profile_file(void **state)
{
    write_home(*state, ".aws/credentials", 0600, "[default]\naws_access_key_id = A\njunk\n");
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(NULL, &p, &err), -EINVAL);
    assert_non_null(strstr(err.message, "line 3"));
}

static const char passwd_lines[] = "# keys\n"
                                   "\n"
                                   "mybucket:AKBUCKET:SBUCKET\n"
                                   "AKDEF:SDEF\n"
                                   "other:AKOTHER:SOTHER\n";

static void expect_passwd_keys(const char *path, const char *bucket, const char *access,
                               const char *secret)
{
    struct creds_options opt = {.passwd_file = path, .bucket = bucket};
    struct creds_provider *p;
    struct s3_error err;
    char source[300];
    assert_int_equal(provider_new(&opt, &p, &err), 0);
    snprintf(source, sizeof source, "passwd file %s", path);
    assert_string_equal(creds_source(p), source);
    expect_keys(p, access, secret, "");
    creds_provider_free(p);
}

static void test_passwd_file(void **state)
{
    char path[256];
    write_file(*state, "passwd", 0600, passwd_lines, path, sizeof path);
    /* the passwd_file option comes before the environment */
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SENV", 1);
    expect_passwd_keys(path, "mybucket", "AKBUCKET", "SBUCKET");
    expect_passwd_keys(path, "other", "AKOTHER", "SOTHER");
    expect_passwd_keys(path, "nomatch", "AKDEF", "SDEF");
    expect_passwd_keys(path, NULL, "AKDEF", "SDEF");
}

static void test_passwd_bucket_only(void **state)
{
    char path[256];
    write_file(*state, "passwd", 0600, "mybucket:AKB:SB\n", path, sizeof path);
    struct creds_options opt = {.passwd_file = path, .bucket = "else"};
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(&opt, &p, &err), -ENOENT);
    assert_non_null(strstr(err.message, path));
}

static void test_passwd_mode(void **state)
{
    char path[256];
    write_file(*state, "passwd", 0644, passwd_lines, path, sizeof path);
    struct creds_options opt = {.passwd_file = path};
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(&opt, &p, &err), -EPERM);
    assert_string_equal(err.code, "CredentialsError");
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "0644"));
    assert_non_null(strstr(err.message, "chmod 600"));

    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(provider_new(&opt, &p, &err), -EPERM);

    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(provider_new(&opt, &p, &err), 0);
    creds_provider_free(p);

    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(provider_new(&opt, &p, &err), 0);
    creds_provider_free(p);
}

static void test_passwd_missing_file(void **state)
{
    (void)state;
    struct creds_options opt = {.passwd_file = "/nonexistent/passwd-s3fs"};
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(&opt, &p, &err), -ENOENT);
    assert_non_null(strstr(err.message, "/nonexistent/passwd-s3fs"));
}

static void test_passwd_malformed(void **state)
{
    static const char *const bad[] = {
        "AKDEF:SDEF\n#\nno-colon-here\n", "AKDEF:SDEF\n\na:b:c:d\n",
        "AKDEF:SDEF\n\n:SECRETX\n",       "AKDEF:SDEF\n\nAK SPACE:SECRETX\n",
        "AKDEF:SDEF\n\nAK2:SECRETX\n", /* a second default line */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[256];
        write_file(*state, "passwd", 0600, bad[i], path, sizeof path);
        struct creds_options opt = {.passwd_file = path};
        struct creds_provider *p;
        struct s3_error err;
        assert_int_equal(provider_new(&opt, &p, &err), -EINVAL);
        assert_non_null(strstr(err.message, path));
        assert_non_null(strstr(err.message, "line 3"));
        assert_null(strstr(err.message, "SECRETX"));
        assert_null(strstr(err.message, "SDEF"));
    }
}

/* The passwd file PATH is refused with RC and a message naming it and
 * saying PHRASE. */
static void expect_passwd_refused(const char *path, int rc, const char *phrase)
{
    struct creds_options opt = {.passwd_file = path};
    struct creds_provider *p = NULL;
    struct s3_error err;
    assert_int_equal(provider_new(&opt, &p, &err), rc);
    assert_null(p);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, phrase));
}

/* A symbolic link where a key file should be is refused, whichever file it
 * is: the option's passwd file, ~/.passwd-s3fs, ~/.aws/credentials. */
static void test_key_file_symlink(void **state)
{
    struct fixture *fx = *state;
    char path[256], link[300];
    write_file(fx, "real", 0600, "AKLINK:SLINK\n", path, sizeof path);
    snprintf(link, sizeof link, "%s/passwd-link", fx->home);
    assert_int_equal(symlink(path, link), 0);
    expect_passwd_refused(link, -EPERM, "is a symbolic link");
    struct creds_options opt = {.passwd_file = path}; /* the file itself is fine */
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(&opt, &p, &err), 0);
    creds_provider_free(p);

    snprintf(link, sizeof link, "%s/.passwd-s3fs", fx->home);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(provider_new(NULL, &p, &err), -EPERM);
    assert_non_null(strstr(err.message, "is a symbolic link"));
    unlink(link);

    write_home(fx, "aws-creds", 0600,
               "[default]\naws_access_key_id = AKL\naws_secret_access_key = SL\n");
    snprintf(link, sizeof link, "%s/.aws/credentials", fx->home);
    snprintf(path, sizeof path, "%s/aws-creds", fx->home);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(provider_new(NULL, &p, &err), -EPERM);
    assert_non_null(strstr(err.message, "AWS credentials file"));
    assert_non_null(strstr(err.message, "is a symbolic link"));
}

/* A key file owned by another user (not root) is refused: they could
 * rewrite it. Needs root to give a file away, as the suite runs. */
static void test_key_file_owner(void **state)
{
    char path[256];
    write_file(*state, "passwd", 0600, "AKOWN:SOWN\n", path, sizeof path);
    assert_int_equal(geteuid(), 0); /* the suite runs as root */
    assert_int_equal(chown(path, 65534, 65534), 0);
    expect_passwd_refused(path, -EPERM, "owned by uid 65534");
    struct creds_options opt = {.passwd_file = path};
    struct creds_provider *p;
    struct s3_error err;
    write_home(*state, ".aws/credentials", 0600,
               "[default]\naws_access_key_id = AKO\naws_secret_access_key = SO\n");
    char aws[256];
    snprintf(aws, sizeof aws, "%s/.aws/credentials", ((struct fixture *)*state)->home);
    assert_int_equal(chown(aws, 65534, 65534), 0);
    assert_int_equal(provider_new(NULL, &p, &err), -EPERM);
    assert_non_null(strstr(err.message, "owned by uid 65534"));
    /* root's own file, or the effective user's, is fine */
    assert_int_equal(chown(path, 0, 0), 0);
    assert_int_equal(provider_new(&opt, &p, &err), 0);
    expect_keys(p, "AKOWN", "SOWN", "");
    creds_provider_free(p);
}

/* Lines are capped at CREDS_LINE_MAX bytes; a longer one is an error that
 * names the file and the line, not a buffer that grows without bound. */
static void test_key_file_long_line(void **state)
{
    size_t n = CREDS_LINE_MAX + 64;
    char *text = malloc(2 * n + 64);
    assert_non_null(text);
    /* a comment of exactly the limit is fine */
    memset(text, '#', CREDS_LINE_MAX);
    snprintf(text + CREDS_LINE_MAX, 64, "\nAKLONG:SLONG\n");
    char path[256];
    write_file(*state, "passwd", 0600, text, path, sizeof path);
    struct creds_options opt = {.passwd_file = path};
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(&opt, &p, &err), 0);
    expect_keys(p, "AKLONG", "SLONG", "");
    creds_provider_free(p);
    /* one byte more is refused */
    int k = snprintf(text, 64, "AKDEF:SDEF\nAKX:");
    memset(text + k, 'S', CREDS_LINE_MAX + 1 - 4);
    snprintf(text + k + CREDS_LINE_MAX + 1 - 4, 64, "\n");
    write_file(*state, "passwd", 0600, text, path, sizeof path);
    expect_passwd_refused(path, -EINVAL, "line 2: longer than 8192 bytes");
    /* the same in ~/.aws/config, and a line with no newline at all */
    memset(text, ' ', n);
    text[n] = '\0';
    memcpy(text, "[default]\nregion = x", 20);
    write_home(*state, ".aws/config", 0600, text);
    assert_int_equal(provider_new(NULL, &p, &err), -EINVAL);
    assert_non_null(strstr(err.message, "config line 2: longer than"));
    free(text);
}

/* Not a regular file: refused at once (a FIFO would block a plain open). */
static void test_key_file_not_regular(void **state)
{
    struct fixture *fx = *state;
    char fifo[128];
    snprintf(fifo, sizeof fifo, "%s/fifo", fx->home);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *const paths[] = {fifo, fx->home, "/dev/null"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        expect_passwd_refused(paths[i], -EINVAL, "is not a regular file");
}

/* The parsers from memory (the fuzz targets' entry points): no terminator
 * needed, only LEN bytes read, NUL bytes and over-long lines refused. */
static void test_parse_from_buffer(void **state)
{
    (void)state;
    static const char text[] = "b1:AKB1:SB1\nAKD:SD"; /* no final newline */
    struct s3_creds c;
    struct s3_error err;
    assert_int_equal(creds_parse_passwd(text, sizeof text - 1, "b1", &c, &err), 0);
    assert_string_equal(c.access_key, "AKB1");
    assert_int_equal(creds_parse_passwd(text, sizeof text - 1, NULL, &c, &err), 0);
    assert_string_equal(c.secret_key, "SD");
    /* only the first LEN bytes count: "AKD:S" */
    assert_int_equal(creds_parse_passwd(text, sizeof text - 2, NULL, &c, &err), 0);
    assert_string_equal(c.secret_key, "S");
    assert_int_equal(creds_parse_passwd("AK:S\0X\n", 7, NULL, &c, &err), -EINVAL);
    assert_non_null(strstr(err.message, "(text) line 1: a NUL byte"));
    char *long_line = malloc(CREDS_LINE_MAX + 2);
    assert_non_null(long_line);
    memset(long_line, 'A', CREDS_LINE_MAX + 1);
    long_line[4] = ':';
    long_line[CREDS_LINE_MAX + 1] = '\n';
    assert_int_equal(creds_parse_passwd(long_line, CREDS_LINE_MAX + 2, NULL, &c, &err), -EINVAL);
    assert_non_null(strstr(err.message, "line 1: longer than 8192 bytes"));
    char region[64];
    assert_int_equal(creds_parse_profile(long_line, CREDS_LINE_MAX + 2, "default", false, &c,
                                         region, sizeof region, &err),
                     -EINVAL);
    free(long_line);

    static const char ini[] = "[profile p]\nregion=r1\naws_access_key_id=AKP\n"
                              "aws_secret_access_key=SP\n[default]\nregion=r0";
    assert_int_equal(
        creds_parse_profile(ini, sizeof ini - 1, "p", true, &c, region, sizeof region, &err), 0);
    assert_string_equal(region, "r1");
    assert_string_equal(c.secret_key, "SP");
    assert_int_equal(
        creds_parse_profile(ini, sizeof ini - 1, "default", true, &c, region, sizeof region, &err),
        0);
    assert_string_equal(region, "r0");
    assert_string_equal(c.access_key, "");
}

/* Every heap block that held the file's text is zeroed before it is freed:
 * the hook sees each block just before free(). */
static size_t wiped_blocks, dirty_blocks, wiped_bytes;
static void record_wipe(const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i = 0;
    while (i < n && b[i] == 0)
        i++;
    wiped_blocks++;
    wiped_bytes += n;
    dirty_blocks += i < n;
}

static void test_key_file_buffers_wiped(void **state)
{
    char path[256];
    write_file(*state, "passwd", 0600, "other:AKO:SECRETO\nAKW:SECRETW\n", path, sizeof path);
    write_home(*state, ".aws/credentials", 0600,
               "[default]\naws_access_key_id = AKI\naws_secret_access_key = SECRETI\n");
    wiped_blocks = dirty_blocks = wiped_bytes = 0;
    wipe_free_hook = record_wipe;
    struct creds_options opt = {.passwd_file = path, .session_token = NULL};
    struct creds_provider *p;
    struct s3_error err;
    int rc = provider_new(&opt, &p, &err);
    size_t passwd_blocks = wiped_blocks, passwd_bytes = wiped_bytes;
    struct creds_provider *q = NULL;
    int rq = provider_new(NULL, &q, &err); /* the profile file */
    wipe_free_hook = NULL;
    assert_int_equal(rc, 0);
    assert_int_equal(rq, 0);
    expect_keys(q, "AKI", "SECRETI", "");
    creds_provider_free(p);
    creds_provider_free(q);
    assert_true(passwd_blocks >= 1); /* the passwd file's text */
    assert_true(passwd_bytes >= 30);
    assert_true(wiped_blocks > passwd_blocks); /* the credentials file's */
    assert_int_equal(dirty_blocks, 0);
}

static void test_home_passwd_s3fs(void **state)
{
    write_home(*state, ".passwd-s3fs", 0600, "AKHOME:SHOME\n");
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(NULL, &p, &err), 0);
    assert_non_null(strstr(creds_source(p), ".passwd-s3fs"));
    expect_keys(p, "AKHOME", "SHOME", "");
    creds_provider_free(p);

    write_home(*state, ".passwd-s3fs", 0604, "AKHOME:SHOME\n");
    assert_int_equal(provider_new(NULL, &p, &err), -EPERM);
}

static void test_nothing_found(void **state)
{
    (void)state;
    if (access("/etc/passwd-s3fs", F_OK) == 0)
        skip(); /* this machine has system-wide keys */
    struct creds_provider *p = (void *)1;
    struct s3_error err;
    assert_int_equal(provider_new(NULL, &p, &err), -ENOENT);
    assert_null(p);
    assert_string_equal(err.code, "CredentialsError");
    assert_non_null(strstr(err.message, "no credentials found: set AWS_ACCESS_KEY_ID/"
                                        "AWS_SECRET_ACCESS_KEY, a profile, or passwd_file"));
    /* the option disables IMDS as well as the variable */
    unsetenv("AWS_EC2_METADATA_DISABLED");
    struct creds_options opt = {.no_imds = true};
    assert_int_equal(provider_new(&opt, &p, &err), -ENOENT);
}

static void test_reload(void **state)
{
    write_home(*state, ".aws/credentials", 0600,
               "[default]\naws_access_key_id = AKOLD\naws_secret_access_key = SOLD\n");
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(NULL, &p, &err), 0);
    expect_keys(p, "AKOLD", "SOLD", "");

    write_home(*state, ".aws/credentials", 0600,
               "[default]\naws_access_key_id = AKNEW\naws_secret_access_key = SNEW\n");
    assert_int_equal(creds_reload(p, &err), 0);
    expect_keys(p, "AKNEW", "SNEW", "");

    /* a failed reload keeps what worked */
    write_home(*state, ".aws/credentials", 0600, "[default]\naws_access_key_id = AKBROKEN\n");
    assert_int_equal(creds_reload(p, &err), -EINVAL);
    expect_keys(p, "AKNEW", "SNEW", "");

    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SENV", 1);
    assert_int_equal(creds_reload(p, &err), 0);
    assert_string_equal(creds_source(p), "environment");
    expect_keys(p, "AKENV", "SENV", "");
    creds_provider_free(p);
}

/* ---- a fake instance metadata service ---- */

#define FAKE_TOKEN_PREFIX "fake-imds-token-"
#define ROLE_PATH         "/latest/meta-data/iam/security-credentials/"

struct imds_server {
    int fd;
    int port;
    pthread_t thread;
    atomic_bool stop;
    bool role_404;  /* the role's credentials answer 404 */
    int expires_in; /* seconds from now in each Expiration */
    atomic_int token_puts, role_gets, cred_gets, bad_requests;
    atomic_int tokens_issued;
};

/* The value of header `name` in a raw request, or "" (case-insensitive). */
static void header_value(const char *req, const char *name, char *out, size_t size)
{
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\r\n%s:", name);
    const char *h = strcasestr(req, pattern);
    out[0] = '\0';
    if (!h)
        return;
    h += strlen(pattern);
    h += strspn(h, " ");
    snprintf(out, size, "%.*s", (int)strcspn(h, "\r\n"), h);
}

static void send_response(int fd, int status, const char *body)
{
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, strlen(body), body);
    ssize_t w = write(fd, buf, (size_t)n);
    (void)w;
}

static bool token_ok(struct imds_server *s, const char *req)
{
    char token[128];
    header_value(req, "X-aws-ec2-metadata-token", token, sizeof token);
    int issued = atomic_load(&s->tokens_issued);
    if (strncmp(token, FAKE_TOKEN_PREFIX, strlen(FAKE_TOKEN_PREFIX)) != 0 ||
        atoi(token + strlen(FAKE_TOKEN_PREFIX)) < 1 ||
        atoi(token + strlen(FAKE_TOKEN_PREFIX)) > issued) {
        atomic_fetch_add(&s->bad_requests, 1);
        return false;
    }
    return true;
}

static void send_keys(struct imds_server *s, int fd)
{
    int n = atomic_fetch_add(&s->cred_gets, 1) + 1;
    char expiration[32], body[1024];
    time_t t = time(NULL) + s->expires_in;
    struct tm tm;
    strftime(expiration, sizeof expiration, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    snprintf(body, sizeof body,
             "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-01-01T00:00:00Z\",\n"
             "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAFAKE%d\",\n"
             "  \"SecretAccessKey\" : \"imds\\/secret%d\",\n  \"Token\" : \"imdstoken%d\",\n"
             "  \"Expiration\" : \"%s\"\n}\n",
             n, n, n, expiration);
    send_response(fd, 200, body);
}

static void serve_one(struct imds_server *s, int fd)
{
    char req[8192] = "";
    size_t len = 0;
    while (len < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
        ssize_t r = read(fd, req + len, sizeof req - 1 - len);
        if (r <= 0)
            return;
        len += (size_t)r;
        req[len] = '\0';
    }
    char method[16], path[256], ttl[32], token[64];
    if (sscanf(req, "%15s %255s", method, path) != 2)
        return;
    if (strcmp(method, "PUT") == 0 && strcmp(path, "/latest/api/token") == 0) {
        header_value(req, "X-aws-ec2-metadata-token-ttl-seconds", ttl, sizeof ttl);
        if (strcmp(ttl, "21600") != 0) {
            atomic_fetch_add(&s->bad_requests, 1);
            send_response(fd, 400, "");
            return;
        }
        atomic_fetch_add(&s->token_puts, 1);
        snprintf(token, sizeof token, FAKE_TOKEN_PREFIX "%d",
                 atomic_fetch_add(&s->tokens_issued, 1) + 1);
        send_response(fd, 200, token);
    } else if (strcmp(method, "GET") != 0 || !token_ok(s, req)) {
        send_response(fd, 401, "");
    } else if (strcmp(path, ROLE_PATH) == 0) {
        atomic_fetch_add(&s->role_gets, 1);
        send_response(fd, 200, "test-role\n");
    } else if (strcmp(path, ROLE_PATH "test-role") == 0 && !s->role_404) {
        send_keys(s, fd);
    } else {
        send_response(fd, 404, "");
    }
}

static void *serve(void *arg)
{
    struct imds_server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        serve_one(s, c);
        close(c);
    }
    return NULL;
}

/* A listening socket on 127.0.0.1 with an ephemeral port. */
static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void point_at(int port)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
}

static void server_start(struct imds_server *s, int expires_in, bool role_404)
{
    memset(s, 0, sizeof *s);
    s->expires_in = expires_in;
    s->role_404 = role_404;
    s->fd = listen_loopback(&s->port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
    point_at(s->port);
}

static void server_stop(struct imds_server *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static void test_imds_fetch_and_refresh(void **state)
{
    (void)state;
    struct imds_server s;
    server_start(&s, 120, false); /* inside the five-minute window */
    struct creds_provider *p;
    struct s3_error err;
    wiped_blocks = dirty_blocks = wiped_bytes = 0;
    wipe_free_hook = record_wipe;
    int rc = provider_new(NULL, &p, &err);
    wipe_free_hook = NULL;
    assert_int_equal(rc, 0);
    /* the IMDS token, the header carrying it and the keys' JSON: wiped */
    assert_true(wiped_blocks >= 3);
    assert_int_equal(dirty_blocks, 0);
    assert_string_equal(creds_source(p), "instance metadata");
    assert_int_equal(atomic_load(&s.cred_gets), 1);

    struct s3_creds a, b;
    assert_int_equal(creds_get(p, &a, &err), 0);
    assert_int_equal(atomic_load(&s.cred_gets), 2);
    assert_int_equal(creds_get(p, &b, &err), 0);
    assert_int_equal(atomic_load(&s.cred_gets), 3);
    assert_string_equal(a.access_key, "ASIAFAKE2");
    assert_string_equal(a.secret_key, "imds/secret2");
    assert_string_equal(a.session_token, "imdstoken2");
    assert_string_equal(b.access_key, "ASIAFAKE3");
    assert_string_not_equal(a.secret_key, b.secret_key);
    time_t now = time(NULL);
    assert_true(b.expires > now + 100 && b.expires <= now + 121);
    assert_null(strstr(creds_source(p), b.secret_key));
    assert_null(strstr(creds_source(p), b.session_token));
    assert_int_equal(atomic_load(&s.token_puts), 3);
    assert_int_equal(atomic_load(&s.role_gets), 3);
    assert_int_equal(atomic_load(&s.bad_requests), 0);

    /* the service goes away: keys that still work are kept */
    server_stop(&s);
    struct s3_creds c;
    assert_int_equal(creds_get(p, &c, &err), 0);
    assert_string_equal(c.access_key, "ASIAFAKE3");
    creds_provider_free(p);
}

static void test_imds_no_early_refresh(void **state)
{
    (void)state;
    struct imds_server s;
    server_start(&s, 3600, false);
    struct creds_provider *p;
    struct s3_error err;
    struct s3_creds c;
    assert_int_equal(provider_new(NULL, &p, &err), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(creds_get(p, &c, &err), 0);
    assert_string_equal(c.access_key, "ASIAFAKE1");
    assert_int_equal(atomic_load(&s.cred_gets), 1);
    creds_provider_free(p);
    server_stop(&s);
}

static void *get_many(void *arg)
{
    struct creds_provider *p = arg;
    for (int i = 0; i < 20; i++) {
        struct s3_creds c;
        struct s3_error err;
        if (creds_get(p, &c, &err) != 0 || strncmp(c.access_key, "ASIAFAKE", 8) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_imds_threads(void **state)
{
    (void)state;
    struct imds_server s;
    server_start(&s, 120, false);
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(NULL, &p, &err), 0);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, get_many, p), 0);
    for (int i = 0; i < 8; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_null(rc);
    }
    /* others used the old keys while one thread refreshed */
    assert_true(atomic_load(&s.cred_gets) <= 1 + 8 * 20);
    assert_int_equal(atomic_load(&s.bad_requests), 0);
    creds_provider_free(p);
    server_stop(&s);
}

static void test_imds_role_404(void **state)
{
    (void)state;
    struct imds_server s;
    server_start(&s, 120, true);
    struct creds_provider *p;
    struct s3_error err;
    assert_int_equal(provider_new(NULL, &p, &err), -ENOENT);
    assert_string_equal(err.code, "CredentialsError");
    assert_non_null(strstr(err.message, "role test-role has no credentials"));
    assert_int_equal(atomic_load(&s.bad_requests), 0);
    server_stop(&s);
}

static void test_imds_unreachable(void **state)
{
    (void)state;
    int port;
    close(listen_loopback(&port)); /* a port nobody listens on */
    point_at(port);
    struct creds_provider *p;
    struct s3_error err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(provider_new(NULL, &p, &err), -ENOENT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 4);
    assert_non_null(strstr(err.message, "no credentials found"));
    assert_non_null(strstr(err.message, "instance metadata"));
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_options_win_over_env),
        T(test_options_missing_half),
        T(test_env_over_profile),
        T(test_env_session_token),
        T(test_env_missing_half),
        T(test_aws_profile_selects),
        T(test_profile_missing),
        T(test_profile_only_in_config),
        T(test_profile_files_from_env),
        T(test_profile_region),
        T(test_malformed_profile_file),
        T(test_passwd_file),
        T(test_passwd_bucket_only),
        T(test_passwd_mode),
        T(test_passwd_missing_file),
        T(test_passwd_malformed),
        T(test_key_file_symlink),
        T(test_key_file_owner),
        T(test_key_file_long_line),
        T(test_key_file_not_regular),
        T(test_parse_from_buffer),
        T(test_key_file_buffers_wiped),
        T(test_home_passwd_s3fs),
        T(test_nothing_found),
        T(test_reload),
        T(test_imds_fetch_and_refresh),
        T(test_imds_no_early_refresh),
        T(test_imds_threads),
        T(test_imds_role_404),
        T(test_imds_unreachable),
    };
#undef T
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
