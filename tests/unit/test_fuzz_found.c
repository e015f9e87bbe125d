/* Regression tests for what the fuzz targets (tests/fuzz) found, one test
 * per bug, each on the input that showed it (also kept in the target's
 * seed corpus, tests/fuzz/corpus/NAME/found-*). */
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

#include "s3cfs/htab.h"
#include "s3cfs/journal.h"

/* ---- journal ---- */

static char dir[64], path[128];

static int journal_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/s3cfs-fuzzfound-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/journal", dir);
    return 0;
}

static int journal_teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

/* A journal made by journal_open (whatever its format puts first), with a
 * job first_id appended unless it is 0, then the records of lines[] with
 * their checksums (FNV-1a, as journal.c). */
static void write_journal(uint64_t first_id, const char *const *lines, size_t n)
{
    struct journal *j;
    assert_int_equal(journal_open(path, &j), 0);
    struct job_spec d = {.kind = JOB_DELETE, .bucket = "bkt", .key = "first"};
    if (first_id)
        assert_int_equal(journal_append(j, first_id, &d), 0);
    journal_close(j);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    for (size_t i = 0; i < n; i++) {
        char line[256];
        unsigned h = hash_fnv1a32(lines[i], strlen(lines[i]));
        int len = snprintf(line, sizeof line, "%s %08x\n", lines[i], h);
        assert_int_equal(write(fd, line, (size_t)len), len);
    }
    close(fd);
}

struct seen {
    uint64_t ids[8];
    size_t n;
};

static int collect(void *arg, uint64_t id, const struct job_spec *spec)
{
    (void)spec;
    struct seen *s = arg;
    if (s->n < 8)
        s->ids[s->n] = id;
    s->n++;
    return 0;
}

/* Only job id is left to replay. */
static void replay_expect_only(uint64_t id)
{
    struct journal *j;
    struct seen s = {{0}, 0};
    assert_int_equal(journal_open(path, &j), 0);
    struct journal_info info;
    journal_info(j, &info);
    assert_int_equal(info.live, 1);
    assert_int_equal(journal_replay(j, collect, &s), 0);
    journal_close(j);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.ids[0], id);
}

/* fuzz_journal: a first record with id 0 was loaded as a live job (0 marks
 * the live map's empty slots, so the map counted a job it could not find)
 * and handed to the replay as job 0. */
static void test_journal_id_zero_is_a_bad_record(void **state)
{
    (void)state;
    static const char *const lines[] = {"D 0 bkt zero-id", "C 0 bkt a bkt b * 1 * *",
                                        "D 1 bkt first"};
    write_journal(0, lines, 3);
    replay_expect_only(1);
}

/* The same hole, worse: after job 59 (whose home slot is the one id 0 maps
 * to) finished, "M 0" found the freed record through the stale slot and
 * wrote into it (heap-use-after-free under ASan; garbage otherwise). */
static void test_journal_meta_of_id_zero_after_done(void **state)
{
    (void)state;
    static const char *const lines[] = {"D 59 bkt k", "F 59", "M 0 1 mode 33188", "F 0"};
    write_journal(2, lines, 4);
    replay_expect_only(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_journal_id_zero_is_a_bad_record, journal_setup,
                                        journal_teardown),
        cmocka_unit_test_setup_teardown(test_journal_meta_of_id_zero_after_done, journal_setup,
                                        journal_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
