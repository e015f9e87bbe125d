/* Unit tests for what the control socket and s3cfs-ctl share: escaping,
 * the socket's location, line reading and sending. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "s3cfs/ctl_proto.h"

static void test_escape_roundtrip(void **state)
{
    (void)state;
    const char *in = "/dir with space/100%\n\t\x7f/\xc3\xa9t\xc3\xa9";
    char esc[256], out[256];
    assert_int_equal(ctl_escape(in, esc, sizeof esc), 0);
    assert_string_equal(esc, "/dir%20with%20space/100%25%0A%09%7F/\xc3\xa9t\xc3\xa9");
    assert_null(strpbrk(esc, " \n\t"));
    assert_int_equal(ctl_unescape(esc, strlen(esc), out, sizeof out), 0);
    assert_string_equal(out, in);
    /* lower-case hex is accepted too */
    assert_int_equal(ctl_unescape("a%2fb", 5, out, sizeof out), 0);
    assert_string_equal(out, "a/b");
    assert_int_equal(ctl_escape("", esc, sizeof esc), 0);
    assert_string_equal(esc, "");
}

static void test_escape_errors(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(ctl_unescape("%G1", 3, out, sizeof out), -EINVAL);
    assert_int_equal(ctl_unescape("ab%4", 4, out, sizeof out), -EINVAL);
    assert_int_equal(ctl_unescape("%00", 3, out, sizeof out), -EINVAL); /* no NUL inside */
    assert_int_equal(ctl_unescape("12345678", 8, out, sizeof out), -ENAMETOOLONG);
    assert_int_equal(ctl_unescape("1234567", 7, out, sizeof out), 0);
    assert_int_equal(ctl_escape("1234567", out, sizeof out), 0);
    assert_int_equal(ctl_escape("12345678", out, sizeof out), -ENAMETOOLONG);
    assert_int_equal(ctl_escape("12345 ", out, sizeof out), -ENAMETOOLONG);
}

static void test_socket_location(void **state)
{
    (void)state;
    char dir[256], path[256];
    assert_int_equal(ctl_socket_dir(0, "/run/user/0", dir, sizeof dir), 0);
    assert_string_equal(dir, "/run/s3cfs"); /* root: always */
    assert_int_equal(ctl_socket_dir(1000, "/run/user/1000", dir, sizeof dir), 0);
    assert_string_equal(dir, "/run/user/1000/s3cfs");
    assert_int_equal(ctl_socket_dir(1000, "relative", dir, sizeof dir), 0);
    assert_string_equal(dir, "/tmp/s3cfs-1000");
    assert_int_equal(ctl_socket_dir(1000, NULL, dir, sizeof dir), 0);
    assert_string_equal(dir, "/tmp/s3cfs-1000");
    /* the journal's FNV-1a, so both name a mount point alike */
    assert_int_equal(ctl_hash(""), 2166136261u);
    assert_int_equal(ctl_hash("a"), 0xe40c292cu);
    assert_int_equal(ctl_socket_path("/run/s3cfs", "/mnt/s3", path, sizeof path), 0);
    char want[64];
    snprintf(want, sizeof want, "/run/s3cfs/ctl-%08x.sock", ctl_hash("/mnt/s3"));
    assert_string_equal(path, want);
    /* a sockaddr_un holds 108 bytes */
    char longdir[120];
    memset(longdir, 'd', sizeof longdir - 1);
    longdir[0] = '/';
    longdir[sizeof longdir - 1] = '\0';
    assert_int_equal(ctl_socket_path(longdir, "/mnt", path, sizeof path), -ENAMETOOLONG);
}

static void test_read_lines(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    static struct ctl_reader r;
    ctl_reader_init(&r, sv[0]);
    char *line;
    assert_int_equal(ctl_send(sv[1], "one\ntw", 6), 0);
    assert_int_equal(ctl_read_line(&r, &line), 1);
    assert_string_equal(line, "one");
    /* non-blocking and only half a line: not yet */
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    assert_int_equal(ctl_read_line(&r, &line), -EAGAIN);
    assert_int_equal(ctl_send(sv[1], "o\n\nthree", 8), 0);
    assert_int_equal(ctl_read_line(&r, &line), 1);
    assert_string_equal(line, "two");
    assert_int_equal(ctl_read_line(&r, &line), 1);
    assert_string_equal(line, "");
    close(sv[1]);
    /* the end of the stream drops a partial last line */
    assert_int_equal(ctl_read_line(&r, &line), 0);
    close(sv[0]);
}

static void test_long_line_and_gone_peer(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    static struct ctl_reader r;
    static char big[CTL_LINE_MAX];
    memset(big, 'x', sizeof big);
    ctl_reader_init(&r, sv[0]);
    assert_int_equal(ctl_send(sv[1], big, sizeof big), 0);
    char *line;
    assert_int_equal(ctl_read_line(&r, &line), -EMSGSIZE);
    close(sv[0]);
    /* a peer gone: -EPIPE, and no SIGPIPE kills us */
    assert_int_equal(ctl_send(sv[1], "x\n", 2), -EPIPE);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_roundtrip),        cmocka_unit_test(test_escape_errors),
        cmocka_unit_test(test_socket_location),         cmocka_unit_test(test_read_lines),
        cmocka_unit_test(test_long_line_and_gone_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
