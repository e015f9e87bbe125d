/* ctl_proto.h - what the daemon's control socket (ctl_server.h) and the
 * s3cfs-ctl client share: where a mount's socket lives, how fields are
 * escaped on the wire, and reading lines from a socket. Pure helpers, no
 * threads, no locks, no logging (the client prints its own messages).
 *
 * Socket location. Each mount has one socket, named by a hash of its mount
 * point (the resolved path, as /proc/self/mountinfo shows it) like the
 * journal (fsqueue.c): DIR/ctl-XXXXXXXX.sock, with DIR only its user can
 * enter (mode 0700):
 *   - /run/s3cfs                 when s3cfs runs as root;
 *   - $XDG_RUNTIME_DIR/s3cfs     otherwise, when that is set (absolute);
 *   - /tmp/s3cfs-UID             otherwise.
 * The client finds the mount's user in mountinfo (user_id=) and tries the
 * directories that user's daemon could have picked.
 *
 * Escaping. Paths, buckets and keys travel as single space-free fields:
 * every byte <= 0x20, '%' and 0x7f becomes %XX (upper-case hex); all other
 * bytes (UTF-8 included) go as they are.
 *
 * All functions return 0 (or a count) or a negative errno.
 */
#ifndef S3CFS_CTL_PROTO_H
#define S3CFS_CTL_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTL_PROTO_VERSION 1
#define CTL_GREETING      "s3cfs-control"
#define CTL_LINE_MAX      16384 /* a request or answer line, newline included */

/* FNV-1a of the mount point (the same function as the journal's name). */
uint32_t ctl_hash(const char *mountpoint);

/* The directory of the sockets of the mounts of a daemon running as uid,
 * with xdg the value of $XDG_RUNTIME_DIR (NULL or relative: unset). */
int ctl_socket_dir(uid_t uid, const char *xdg, char *out, size_t size);

/* DIR/ctl-XXXXXXXX.sock; -ENAMETOOLONG when it does not fit a sockaddr_un. */
int ctl_socket_path(const char *dir, const char *mountpoint, char *out, size_t size);

/* Escape in (NUL-terminated) into out. -ENAMETOOLONG if it does not fit. */
int ctl_escape(const char *in, char *out, size_t size);
/* Undo ctl_escape on the n bytes of in; -EINVAL for a bad %XX or an
 * escaped NUL, -ENAMETOOLONG if it does not fit. */
int ctl_unescape(const char *in, size_t n, char *out, size_t size);

/* Buffered line reading from a socket. */
struct ctl_reader {
    int fd;
    size_t len, off; /* buf[off..len) not yet returned */
    char buf[CTL_LINE_MAX];
};
void ctl_reader_init(struct ctl_reader *r, int fd);
/* One line, without its newline, NUL-terminated in r's buffer (valid until
 * the next call): 1. 0 at the end of the stream (a partial last line is
 * dropped), -EAGAIN when the socket has no full line yet (non-blocking or
 * SO_RCVTIMEO), -EMSGSIZE for a line over CTL_LINE_MAX, or recv's error. */
int ctl_read_line(struct ctl_reader *r, char **line);

/* Send all of buf (MSG_NOSIGNAL: a peer that went away is -EPIPE, never a
 * SIGPIPE). */
int ctl_send(int fd, const char *buf, size_t n);

#endif
