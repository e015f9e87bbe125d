/* itest.h - shared helpers for integration tests against the real server.
 *
 * The ctest fixture starts radosgw and runs each test through
 * with-server.sh, which exports S3_ENDPOINT and the AWS_* keys. Each test
 * makes its own bucket with a unique name.
 */
#ifndef S3CFS_ITEST_H
#define S3CFS_ITEST_H

#include <stddef.h>

#include "s3cfs/buf.h"
#include "s3cfs/s3.h"

struct itest_env {
    const char *endpoint;
    const char *access_key;
    const char *secret_key;
};

/* Reads the environment; aborts the test program with a message if the
 * server variables are missing (the fixture did not run). */
void itest_env(struct itest_env *e);
/* A client for endpoint (NULL: the server's) with the given secret (NULL:
 * the right one). max_attempts 0: default. */
struct s3_client *itest_client(const char *endpoint, const char *secret, int max_attempts);
void itest_client_free(struct s3_client *c);
/* "s3cfs-t-<tag>-<pid>-<n>", lower case; created on the server. */
void itest_bucket(struct s3_client *c, const char *tag, char out[64]);
/* Run a shell command with the AWS CLI pointed at the server; its stdout
 * into out (may be NULL). Returns the exit status. */
int itest_aws(struct sbuf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Deterministic pseudo-random bytes for content checks. */
void itest_fill(char *buf, size_t n, unsigned seed);

/* The fault/latency proxy (tests/tools/proxy), started in front of the
 * server. args: extra command-line options, e.g. "--delay-ms 30". Returns
 * its endpoint URL in url (static storage, valid until itest_proxy_stop). */
const char *itest_proxy_start(const char *args);
void itest_proxy_stop(void);
/* Requests of one kind seen by the proxy ("CopyObject", "total",
 * "fault.503"...), or -1 if the proxy could not be asked. */
long itest_proxy_count(const char *kind);
/* POST /__proxy/reset or /__proxy/config?QUERY; 0 on success. */
int itest_proxy_reset(void);
int itest_proxy_config(const char *query);

#endif
