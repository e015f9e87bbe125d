/* creds_internal.h - what the three modules of the credentials provider
 * share (internal to s3/; the contract is credentials.h):
 *   credentials.c  the chain, the provider and the refresh of expiring keys;
 *                  defines the helpers below;
 *   creds_file.c   the passwd and AWS credentials/config files;
 *   creds_imds.c   EC2 instance metadata.
 * Every function here fills err on failure and returns a negative errno;
 * every buffer that held a key is wiped by the function that filled it.
 * None takes a lock: the provider's lock is credentials.c's alone.
 */
#ifndef S3CFS_S3_CREDS_INTERNAL_H
#define S3CFS_S3_CREDS_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "s3cfs/credentials.h"
#include "s3cfs/error.h"

/* What one link of the chain produced. */
struct found {
    struct s3_creds creds; /* access_key[0] == '\0': nothing here */
    char source[PATH_MAX + 32];
    bool imds; /* expires and must be refreshed from instance metadata */
};

/* ---- helpers (credentials.c) ---- */

/* Fills err (code "CredentialsError", the formatted message) and returns
 * rc, so that callers can `return creds_fail(...)`. */
int creds_fail(struct s3_error *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* creds_fail(err, -e, "WHAT PATH: strerror(e)"), thread-safe. */
int creds_fail_errno(struct s3_error *err, int e, const char *what, const char *path);
/* getenv, with an empty value taken as unset. */
const char *creds_env(const char *name);
/* s, or NULL when s is NULL or "". */
const char *creds_nonempty(const char *s);
/* Strips blanks at both ends, in place; returns the first non-blank. */
char *creds_trim(char *s);
/* Copies src into dst[size], or false (dst untouched) when it does not
 * fit: keys are refused, never cut. */
bool creds_copy_str(char *dst, size_t size, const char *src);
/* "DIR/REL" into out[size], or -ENAMETOOLONG. */
int creds_path_join(char *out, size_t size, const char *dir, const char *rel);
/* Fills c from a key set. Nothing at all: 0 with c empty. A lone half (or a
 * token without keys): -EINVAL. Too long for struct s3_creds: -ENAMETOOLONG
 * (callers turn both into -EINVAL with their own context). err untouched. */
int creds_put_keys(struct s3_creds *c, const char *access, const char *secret, const char *token);

/* ---- the files (creds_file.c) ---- */

/* The passwd file at path into f (f->source names it), the bucket's own
 * line winning over the ACCESS:SECRET one. A file given explicitly
 * (required) must yield keys; a default location may be absent (0, f
 * empty). forbidden: the mode bits that make the file refused (-EPERM). */
int creds_passwd_read(const char *path, const char *bucket, bool required, mode_t forbidden,
                      struct found *f, struct s3_error *err);

/* A profile's part of the AWS credentials and config files. */
struct creds_profile {
    struct s3_creds c;
    char region[64];
    bool found; /* the profile's section exists */
};
/* The profile's keys from the credentials file, else from the config file
 * (the AWS CLI's precedence), into d; where[wsize] names the file(s) read,
 * for messages. Missing files are empty ones. */
int creds_read_profile(const char *profile, struct creds_profile *d, char *where, size_t wsize,
                       struct s3_error *err);
/* The profile option, else AWS_PROFILE, else "default". */
const char *creds_profile_name(const char *opt_profile);

/* ---- instance metadata (creds_imds.c) ---- */

/* The instance role's keys, with their expiry, from the endpoint in
 * AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254 (a few
 * seconds at most: off EC2 nothing answers, which comes back with
 * err->curl_code set and err->http_status 0). c is emptied on failure. */
int creds_imds_fetch(struct s3_creds *c, struct s3_error *err);

#endif
