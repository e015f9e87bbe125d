/* credentials.h - where the access key comes from.
 *
 * A provider is built once at mount time from options and the environment
 * and then asked for credentials before every request. The chain, first
 * match wins:
 *   1. explicit keys in the options;
 *   2. an s3fs-style passwd file given in the options ("ACCESS:SECRET" or
 *      "BUCKET:ACCESS:SECRET" lines; refused with -EPERM when group- or
 *      world-readable, as s3fs does);
 *   3. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN;
 *   4. the profile (option, else AWS_PROFILE, else "default") in
 *      AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, then in
 *      AWS_CONFIG_FILE or ~/.aws/config ("[profile NAME]" sections);
 *   5. $HOME/.passwd-s3fs, then /etc/passwd-s3fs (same permission rule);
 *   6. EC2 instance metadata (IMDSv2: PUT a token, then the role's
 *      credentials), refreshed five minutes before they expire. The endpoint
 *      is AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254; it is
 *      tried only when nothing else matched and not disabled by
 *      AWS_EC2_METADATA_DISABLED=true or the option.
 *
 * Every file that may hold keys (passwd files, the AWS credentials and
 * config files) is refused with -EPERM when it is a symbolic link (opened
 * with O_NOFOLLOW) or owned by anyone but the effective user or root, and
 * with -EINVAL when it is not a regular file, is larger than 1 MiB or has a
 * line longer than CREDS_LINE_MAX bytes. A file is read whole into memory
 * and parsed there by the code behind creds_parse_passwd() and
 * creds_parse_profile(); every buffer that held its text is wiped before it
 * is freed (wipe_free() in buf.h).
 *
 * Thread-safety: creds_get() may be called from any thread; the provider
 * keeps its current credentials under an internal mutex which is never held
 * across the IMDS HTTP request (a refresh is done by one thread while the
 * others keep using the old, still valid, credentials).
 */
#ifndef S3CFS_CREDENTIALS_H
#define S3CFS_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "s3cfs/error.h"

struct s3_creds {
    char access_key[128];
    char secret_key[128];
    char session_token[4096]; /* "" when none */
    time_t expires;           /* 0 = never */
};

#define CREDS_LINE_MAX 8192 /* bytes in one line of a credentials file */

struct creds_options {
    const char *access_key; /* explicit, with secret_key */
    const char *secret_key;
    const char *session_token;
    const char *profile;     /* NULL: AWS_PROFILE or "default" */
    const char *passwd_file; /* s3fs-style */
    const char *bucket;      /* picks "BUCKET:ACCESS:SECRET" lines; may be NULL */
    bool no_imds;            /* never ask instance metadata */
};

struct creds_provider;

/* Resolve the chain. Returns 0, -EPERM (passwd file readable by others, a
 * key file that is a symbolic link or owned by another user; the message
 * says which file), -ENOENT (nothing found anywhere), -EINVAL
 * (malformed file), with a human-readable reason in err->message. */
int creds_provider_new(const struct creds_options *opt, struct creds_provider **out,
                       struct s3_error *err);
void creds_provider_free(struct creds_provider *p);

/* Copy the current credentials into *out, refreshing them first when they
 * expire within five minutes. Returns 0 or -errno with err filled. */
int creds_get(struct creds_provider *p, struct s3_creds *out, struct s3_error *err);

/* Re-run the chain (SIGHUP). On failure the old credentials stay. */
int creds_reload(struct creds_provider *p, struct s3_error *err);

/* Where the current credentials came from: "options", "passwd file PATH",
 * "environment", "profile NAME", "instance metadata". Never a secret. */
const char *creds_source(struct creds_provider *p);

/* The region named for the profile in the config file, if any: 0 and
 * out filled, or -ENOENT. */
int creds_profile_region(const char *profile, char *out, size_t size);

/* The parsers of the chain's files on text[0..len) in memory, for tests and
 * fuzzing (tests/fuzz/fuzz_credentials.c); the chain parses the files it
 * reads with the same code, line cap included. NUL bytes in the text are
 * refused (-EINVAL); messages name the text "(text)" and never a secret.
 * creds_parse_passwd: an s3fs passwd file, the bucket's line winning over
 * the ACCESS:SECRET one (bucket may be NULL): 0, -ENOENT (no usable line),
 * -EINVAL (malformed). creds_parse_profile: an AWS shared credentials file
 * (config false) or config file ("[profile NAME]" sections), the keys (maybe
 * none) and region (maybe "") of profile: 0, -ENOENT (no such section),
 * -EINVAL (malformed), -ENAMETOOLONG (region does not fit). *out is always
 * written; err says why on failure. */
int creds_parse_passwd(const char *text, size_t len, const char *bucket, struct s3_creds *out,
                       struct s3_error *err);
int creds_parse_profile(const char *text, size_t len, const char *profile, bool config,
                        struct s3_creds *out, char *region, size_t region_size,
                        struct s3_error *err);

#endif
