/* Unit tests for the parse-from-memory entry points the fuzz targets use
 * (journal_open_memory, creds_parse_passwd, creds_parse_profile): they read
 * what the file readers read. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3cfs/credentials.h"
#include "s3cfs/journal.h"

static void test_passwd_text(void **state)
{
    (void)state;
    static const char text[] = "# keys\nAKID:SECRET\n\nmybucket:AK2:SK2\nother:AK3:SK3\n";
    struct s3_creds c;
    struct s3_error err;
    s3_error_clear(&err);
    assert_int_equal(creds_parse_passwd(text, strlen(text), NULL, &c, &err), 0);
    assert_string_equal(c.access_key, "AKID");
    assert_string_equal(c.secret_key, "SECRET");
    assert_int_equal(creds_parse_passwd(text, strlen(text), "mybucket", &c, &err), 0);
    assert_string_equal(c.access_key, "AK2");
    assert_string_equal(c.secret_key, "SK2");
    static const char bad[] = "AKID:SECRET\nno colon here\n";
    assert_int_equal(creds_parse_passwd(bad, strlen(bad), NULL, &c, &err), -EINVAL);
    assert_non_null(strstr(err.message, "line 2"));
    assert_int_equal(creds_parse_passwd("", 0, NULL, &c, &err), -ENOENT);
    assert_string_equal(c.access_key, "");
}

static void test_profile_text(void **state)
{
    (void)state;
    static const char config[] = "[default]\nregion = eu-west-1\n[profile dev]\n"
                                 "aws_access_key_id: A3\naws_secret_access_key = S3\n"
                                 "s3 =\n    region = nested\nregion=us-east-1\n";
    struct s3_creds c;
    struct s3_error err;
    char region[64];
    s3_error_clear(&err);
    assert_int_equal(
        creds_parse_profile(config, strlen(config), "dev", true, &c, region, sizeof region, &err),
        0);
    assert_string_equal(c.access_key, "A3");
    assert_string_equal(c.secret_key, "S3");
    assert_string_equal(region, "us-east-1");
    /* in a credentials file the section is "[dev]", not "[profile dev]" */
    assert_int_equal(
        creds_parse_profile(config, strlen(config), "dev", false, &c, region, sizeof region, &err),
        -ENOENT);
    assert_int_equal(creds_parse_profile(config, strlen(config), "default", false, &c, region,
                                         sizeof region, &err),
                     0);
    assert_string_equal(region, "eu-west-1");
    assert_string_equal(c.access_key, "");
    static const char bad[] = "[default\n";
    assert_int_equal(
        creds_parse_profile(bad, strlen(bad), "default", false, &c, region, sizeof region, &err),
        -EINVAL);
}

static int collect(void *arg, uint64_t id, const struct job_spec *spec)
{
    uint64_t *ids = arg;
    assert_string_equal(spec->bucket, "bkt");
    ids[ids[0]++ + 1] = id;
    return 0;
}

/* A journal written by journal_append, read back from memory. */
static void test_journal_memory(void **state)
{
    (void)state;
    char dir[] = "/tmp/s3cfs-parsemem-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/journal", dir);
    struct journal *j;
    assert_int_equal(journal_open(path, &j), 0);
    struct job_spec c = {.kind = JOB_COPY,
                         .bucket = "bkt",
                         .key = "dst key",
                         .src_bucket = "bkt",
                         .src_key = "src",
                         .src_size = 5};
    struct job_spec d = {.kind = JOB_DELETE, .bucket = "bkt", .key = "src", .guard = 1};
    assert_int_equal(journal_append(j, 1, &c), 0);
    assert_int_equal(journal_append(j, 2, &d), 0);
    assert_int_equal(journal_append(j, 3, &d), 0);
    uint64_t done = 3;
    assert_int_equal(journal_done(j, &done, 1), 0);
    journal_close(j);
    char text[4096];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, text, sizeof text);
    close(fd);
    unlink(path);
    rmdir(dir);
    assert_true(n > 0 && n < (ssize_t)sizeof text);

    assert_int_equal(journal_open_memory(text, (size_t)n, &j), 0);
    struct journal_info info;
    journal_info(j, &info);
    assert_int_equal(info.live, 2);
    assert_int_equal(info.max_id, 3);
    uint64_t ids[4] = {0};
    assert_int_equal(journal_replay(j, collect, ids), 0);
    journal_close(j);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 1);
    assert_int_equal(ids[2], 2);
    assert_int_equal(journal_open_memory("", 0, &j), 0); /* empty: nothing to replay */
    journal_info(j, &info);
    assert_int_equal(info.live, 0);
    journal_close(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passwd_text),
        cmocka_unit_test(test_profile_text),
        cmocka_unit_test(test_journal_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
