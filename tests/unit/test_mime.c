/* mime.c: extension -> Content-Type from a mime.types file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3cfs/mime.h"

static struct mime_table *load_text(const char *text)
{
    char path[] = "/tmp/test_mime.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct mime_table *t = NULL;
    assert_int_equal(mime_load(path, &t), 0);
    unlink(path);
    return t;
}

static const char *type_of(const struct mime_table *t, const char *path)
{
    static char out[MIME_TYPE_MAX + 1];
    mime_type(t, path, out, sizeof out);
    return out;
}

static void test_lookup(void **state)
{
    (void)state;
    struct mime_table *t = load_text("# comment line\n"
                                     "text/plain\t\ttxt text\n"
                                     "  image/jpeg jpeg jpg # trailing comment jfif\n"
                                     "application/gzip gz\n"
                                     "text/x-other txt\n" /* a duplicate: the first wins */
                                     "no-slash foo\n"     /* not a type */
                                     "application/empty\n");
    assert_int_equal(mime_count(t), 5);
    assert_string_equal(type_of(t, "/a/b.txt"), "text/plain");
    assert_string_equal(type_of(t, "/P.JPG"), "image/jpeg"); /* any case */
    assert_string_equal(type_of(t, "/x.tar.gz"), "application/gzip");
    assert_string_equal(type_of(t, "/notes.txt.bak"), "text/plain"); /* the one before */
    assert_string_equal(type_of(t, "/x.jfif"), "");                  /* after a comment */
    assert_string_equal(type_of(t, "/x.foo"), "");
    assert_string_equal(type_of(t, "/.txt"), "");          /* a dot file has no extension */
    assert_string_equal(type_of(t, "/dir.txt/noext"), ""); /* only the last component */
    assert_string_equal(type_of(t, "/trailing."), "");
    assert_string_equal(type_of(NULL, "/a.txt"), ""); /* nomime */
    mime_free(t);
}

static void test_bounds(void **state)
{
    (void)state;
    /* a type or extension over the limits is skipped, not truncated */
    char line[512];
    memset(line, 'x', sizeof line);
    memcpy(line, "text/", 5);
    memcpy(line + 300, " ok ", 4);
    line[sizeof line - 1] = '\0';
    struct mime_table *t = load_text(line);
    assert_int_equal(mime_count(t), 0);
    mime_free(t);
    char ext[MIME_EXT_MAX + 40];
    snprintf(ext, sizeof ext, "a/b %0*d short\n", MIME_EXT_MAX + 1, 7);
    t = load_text(ext);
    assert_int_equal(mime_count(t), 1);
    assert_string_equal(type_of(t, "/f.short"), "a/b");
    mime_free(t);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct mime_table *t = NULL;
    assert_int_equal(mime_load("/nonexistent/mime.types", &t), 0);
    assert_non_null(t);
    assert_int_equal(mime_count(t), 0);
    assert_string_equal(type_of(t, "/a.txt"), "");
    mime_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
