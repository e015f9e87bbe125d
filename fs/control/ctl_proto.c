/* ctl_proto.c - helpers shared by the control socket and s3cfs-ctl (see
 * ctl_proto.h). */
#include "s3cfs/ctl_proto.h"
#include "s3cfs/uri.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "s3cfs/htab.h"

uint32_t ctl_hash(const char *mountpoint)
{
    return hash_fnv1a32(mountpoint, strlen(mountpoint));
}

static int fits(int n, size_t size)
{
    return n < 0 ? -EINVAL : (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int ctl_socket_dir(uid_t uid, const char *xdg, char *out, size_t size)
{
    if (uid == 0)
        return fits(snprintf(out, size, "/run/s3cfs"), size);
    if (xdg && xdg[0] == '/')
        return fits(snprintf(out, size, "%s/s3cfs", xdg), size);
    return fits(snprintf(out, size, "/tmp/s3cfs-%u", (unsigned)uid), size);
}

int ctl_socket_path(const char *dir, const char *mountpoint, char *out, size_t size)
{
    struct sockaddr_un sun;
    int rc = fits(snprintf(out, size, "%s/ctl-%08x.sock", dir, ctl_hash(mountpoint)), size);
    if (rc == 0 && strlen(out) >= sizeof sun.sun_path)
        rc = -ENAMETOOLONG;
    return rc;
}

static bool needs_escape(unsigned char c)
{
    return c <= 0x20 || c == '%' || c == 0x7f;
}

int ctl_escape(const char *in, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        size_t need = needs_escape(*p) ? 3 : 1;
        if (o + need >= size)
            return -ENAMETOOLONG;
        if (need == 1) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o >= size)
        return -ENAMETOOLONG;
    out[o] = '\0';
    return 0;
}

int ctl_unescape(const char *in, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -EINVAL;
            int a = uri_hex_value((unsigned char)in[i + 1]);
            int b = uri_hex_value((unsigned char)in[i + 2]);
            if (a < 0 || b < 0 || (a == 0 && b == 0))
                return -EINVAL;
            c = a * 16 + b;
            i += 2;
        }
        if (o + 1 >= size)
            return -ENAMETOOLONG;
        out[o++] = (char)c;
    }
    if (o >= size)
        return -ENAMETOOLONG;
    out[o] = '\0';
    return 0;
}

void ctl_reader_init(struct ctl_reader *r, int fd)
{
    r->fd = fd;
    r->len = r->off = 0;
}

int ctl_read_line(struct ctl_reader *r, char **line)
{
    for (;;) {
        char *nl = memchr(r->buf + r->off, '\n', r->len - r->off);
        if (nl) {
            *nl = '\0';
            *line = r->buf + r->off;
            r->off = (size_t)(nl - r->buf) + 1;
            return 1;
        }
        if (r->off > 0) { /* keep the partial line at the front */
            memmove(r->buf, r->buf + r->off, r->len - r->off);
            r->len -= r->off;
            r->off = 0;
        }
        if (r->len == sizeof r->buf)
            return -EMSGSIZE;
        ssize_t n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
        r->len += (size_t)n;
    }
}

int ctl_send(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}
