/* fuzz_credentials: the credential files a mount reads (s3/credentials.c),
 * from memory: an s3fs passwd file (with and without a bucket to pick its
 * line) and an AWS credentials and config file (two profile names). */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "s3cfs/credentials.h"

static void check_terminated(const struct s3_creds *c)
{
    FUZZ_CHECK(memchr(c->access_key, '\0', sizeof c->access_key));
    FUZZ_CHECK(memchr(c->secret_key, '\0', sizeof c->secret_key));
    FUZZ_CHECK(memchr(c->session_token, '\0', sizeof c->session_token));
}

static void fuzz_passwd(const char *text, size_t len, const char *bucket)
{
    struct s3_creds c;
    struct s3_error err;
    s3_error_clear(&err);
    int rc = creds_parse_passwd(text, len, bucket, &c, &err);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -ENOMEM);
    check_terminated(&c);
    if (rc == 0) {
        /* a key is one field: never empty, no blank, no separator */
        FUZZ_CHECK(c.access_key[0] && c.secret_key[0] && !c.session_token[0]);
        FUZZ_CHECK(!strpbrk(c.access_key, " \t\n:") && !strpbrk(c.secret_key, " \t\n:"));
    } else {
        FUZZ_CHECK(err.message[0] != '\0');
    }
}

static void fuzz_profile(const char *text, size_t len, const char *profile, bool config)
{
    struct s3_creds c;
    struct s3_error err;
    char region[64];
    s3_error_clear(&err);
    int rc = creds_parse_profile(text, len, profile, config, &c, region, sizeof region, &err);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -ENAMETOOLONG || rc == -ENOMEM);
    check_terminated(&c);
    if (rc == 0) {
        FUZZ_CHECK(memchr(region, '\0', sizeof region));
        FUZZ_CHECK(!strchr(c.access_key, '\n') && !strchr(c.secret_key, '\n'));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    fuzz_passwd(text, size, NULL);
    fuzz_passwd(text, size, "mybucket");
    fuzz_profile(text, size, "default", false);
    fuzz_profile(text, size, "default", true);
    fuzz_profile(text, size, "dev", true);
    return 0;
}
