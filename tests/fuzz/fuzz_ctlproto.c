/* fuzz_ctlproto: what a control-socket peer sends (fs/control/ctl_proto.c): the
 * bytes arrive through a real socket in chunks the input chooses,
 * ctl_read_line cuts them into lines, and every space-separated field of
 * every line goes through ctl_unescape, whose result must escape back to
 * a field that unescapes to the same bytes. A field that is a PATH then
 * goes where the daemon sends it (fs/ops/path.c, in an all-buckets and a
 * prefix mount): resolved, its listing prefix, and back to the same path.
 *
 * Input: the first byte seeds the chunk sizes (1..256 bytes per send); the
 * rest is the stream. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "s3cfs/ctl_proto.h"
#include "s3cfs/path.h"

/* What the daemon does with a request's PATH (ctl_server.c: scope_of). */
static void check_path(const struct path_map *m, const char *path)
{
    struct fs_loc loc;
    char prefix[S3CFS_KEY_MAX + 2], back[CTL_LINE_MAX];
    int rc = path_resolve(m, path, &loc);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOENT || rc == -ENAMETOOLONG);
    if (rc)
        return;
    FUZZ_CHECK(strlen(loc.key) <= S3CFS_KEY_MAX && strlen(loc.bucket) <= S3CFS_BUCKET_MAX);
    if (loc.kind == LOC_ROOT)
        return;
    FUZZ_CHECK(path_bucket_name_ok(loc.bucket));
    rc = path_dir_prefix(&loc, prefix, sizeof prefix);
    FUZZ_CHECK(rc == 0 || rc == -ENAMETOOLONG);
    FUZZ_CHECK(rc || prefix[0] == '\0' || prefix[strlen(prefix) - 1] == '/');
    /* back to the path, but for a trailing '/' */
    FUZZ_CHECK(path_from_key(m, loc.bucket, loc.key, back, sizeof back) == 0);
    size_t n = strlen(path);
    if (n > 1 && path[n - 1] == '/')
        n--;
    FUZZ_CHECK(strlen(back) == n && strncmp(back, path, n) == 0);
}

static void check_field(const char *f, size_t n)
{
    char raw[CTL_LINE_MAX], esc[3 * CTL_LINE_MAX + 1], back[CTL_LINE_MAX];
    int rc = ctl_unescape(f, n, raw, sizeof raw);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENAMETOOLONG);
    if (rc)
        return;
    FUZZ_CHECK(strlen(raw) <= n);
    FUZZ_CHECK(ctl_escape(raw, esc, sizeof esc) == 0);
    FUZZ_CHECK(!strpbrk(esc, " \n\r\t"));
    FUZZ_CHECK(ctl_unescape(esc, strlen(esc), back, sizeof back) == 0);
    FUZZ_CHECK(strcmp(raw, back) == 0);
    /* a buffer one byte short of the result must be refused, not overrun */
    size_t len = strlen(raw);
    FUZZ_CHECK(ctl_unescape(f, n, back, len) == -ENAMETOOLONG);
    if (raw[0] == '/') {
        static struct path_map all, one;
        if (!one.bucket[0]) {
            FUZZ_CHECK(path_map_init(&all, NULL) == 0);
            FUZZ_CHECK(path_map_init(&one, "bkt:/pre/fix/") == 0);
        }
        check_path(&all, raw);
        check_path(&one, raw);
    }
}

static void check_line(const char *line)
{
    size_t n = strlen(line);
    FUZZ_CHECK(n < CTL_LINE_MAX && !memchr(line, '\n', n));
    for (const char *f = line; f <= line + n;) {
        const char *sp = strchr(f, ' ');
        size_t len = sp ? (size_t)(sp - f) : strlen(f);
        check_field(f, len);
        f += len + 1;
    }
}

/* Read every full line now available; 0 at the end of the stream. */
static int drain(struct ctl_reader *r, size_t *lines)
{
    for (;;) {
        char *line;
        int rc = ctl_read_line(r, &line);
        if (rc != 1)
            return rc;
        check_line(line);
        (*lines)++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    struct ctl_reader *r = malloc(sizeof *r);
    ctl_reader_init(r, sv[0]);
    unsigned seed = data[0];
    size_t off = 1, lines = 0, newlines = 0;
    int rc = -EAGAIN;
    while (off < size && rc == -EAGAIN) {
        seed = seed * 1103515245u + 12345u;
        size_t chunk = 1 + (seed >> 16) % 256;
        if (chunk > size - off)
            chunk = size - off;
        FUZZ_CHECK(ctl_send(sv[1], (const char *)data + off, chunk) == 0);
        for (size_t i = 0; i < chunk; i++)
            newlines += data[off + i] == '\n';
        off += chunk;
        rc = drain(r, &lines);
        FUZZ_CHECK(rc == -EAGAIN || rc == -EMSGSIZE);
    }
    if (rc == -EAGAIN) {
        shutdown(sv[1], SHUT_WR);
        rc = drain(r, &lines);
        FUZZ_CHECK(rc == 0 && lines == newlines); /* a partial last line is dropped */
    }
    close(sv[0]);
    close(sv[1]);
    free(r);
    return 0;
}
