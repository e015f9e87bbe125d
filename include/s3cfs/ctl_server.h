/* ctl_server.h - the daemon's control socket, which s3cfs-ctl talks to:
 * the engine's status, waiting for queued jobs, and recent failures
 * (doc/DESIGN.md §3.7-3.8).
 *
 * Where. One Unix stream socket per mount, DIR/ctl-XXXXXXXX.sock named by a
 * hash of the mount point, in a directory of mode 0700 owned by the daemon's
 * user (ctl_proto.h says which). The directory keeps other users out; the
 * server also checks every peer with SO_PEERCRED and serves only the
 * daemon's own uid and root. A stale socket of the same name (a daemon that
 * crashed) is replaced; the socket is removed at stop if it is still ours.
 *
 * Protocol: text lines ending in '\n'. On connecting, the server sends
 *     s3cfs-control 1 MOUNTPOINT PID
 * or, to a peer it refuses, one "error ERRNO TEXT" line before closing.
 * Then the client sends requests, one per line; each answer is zero or more
 * data lines and a last line "ok" or "error ERRNO TEXT" (ERRNO positive).
 * PATH is a path in the mount as FUSE sees it ("/" is the whole mount);
 * PATH, BUCKET and KEY are escaped (ctl_proto.h). Requests:
 *   status        "NAME VALUE" lines: mount, source, pid, uptime_ms, the
 *                 engine_status fields as jobs_*, s3_requests,
 *                 s3_requests_per_s (over the last ~5 s), s3_retries,
 *                 s3_throttled, s3_failures, s3_bytes_up, s3_bytes_down,
 *                 pool_*, the nscache_stats fields as cache_*.
 *   count PATH    "pending N": jobs pending whose destination (or deleted
 *                 key) is PATH or below it. For progress bars.
 *   wait PATH     blocks until every job pending now whose destination is
 *                 PATH or below it finished ("/": every job; engine_drain).
 *                 "ok" when all landed; else the failures below PATH that
 *                 engine_failures still lists, as lines
 *                     failure ERRNO BUCKET KEY MESSAGE
 *                 then "error ERRNO TEXT" with the earliest error. The wait
 *                 reports and clears the errors it returns, like fsync of a
 *                 directory: a later fsync or wait does not see them again
 *                 (the failure lines stay in engine_failures' list).
 *   errors [PATH] the "failure ..." lines of the recent failures (below
 *                 PATH if given), oldest first; reports nothing, clears
 *                 nothing.
 * Unknown requests get "error 22 ...". A connection idle for 60 s (not
 * counting a wait in progress) is closed.
 *
 * Threads. One acceptor thread (all signals blocked) samples the S3
 * request counter every second for the rate and accepts clients; each
 * client gets a detached thread of its own, at most CONTROL_MAX_CLIENTS at
 * once (more are told "error 16 ..." and closed). Sockets use MSG_NOSIGNAL
 * and a send timeout, so a client that vanishes or stops reading mid-answer
 * costs its thread at most that timeout, never the daemon. A client gone
 * during a wait is noticed when the wait ends.
 *
 * Locking: one mutex protects the client count, the stop flag and the rate
 * samples; it is never held across socket I/O or an engine call.
 *
 * Memory: struct ctl_server is owned by the fs_ctx (c->control), allocated by
 * ctl_server_start and freed by ctl_server_stop.
 */
#ifndef S3CFS_CTL_SERVER_H
#define S3CFS_CTL_SERVER_H

#include "s3cfs/fs.h"

#define CONTROL_MAX_CLIENTS 32

/* Start serving the socket of c's mount; call once the engine runs (after
 * daemonizing: it starts threads). On failure (logged) c->control stays
 * NULL and the mount works without a control socket: -errno. */
int ctl_server_start(struct fs_ctx *c);

/* At the end of the mount, before the engine stops: keep serving until
 * every queued job finished (so that s3cfs-ctl can watch the final drain
 * after an unmount or SIGTERM; nothing is reported or cleared), then close
 * the socket, wait for the clients' threads and free. No-op when
 * c->control is NULL. */
void ctl_server_stop(struct fs_ctx *c);

#endif
