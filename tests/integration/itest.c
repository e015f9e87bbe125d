#include "itest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct creds_provider *providers[16];
static int nproviders;

void itest_env(struct itest_env *e)
{
    e->endpoint = getenv("S3_ENDPOINT");
    e->access_key = getenv("AWS_ACCESS_KEY_ID");
    e->secret_key = getenv("AWS_SECRET_ACCESS_KEY");
    if (!e->endpoint || !e->access_key || !e->secret_key) {
        fprintf(stderr, "integration test: S3_ENDPOINT/AWS_* not set (run through ctest)\n");
        exit(2);
    }
}

struct s3_client *itest_client(const char *endpoint, const char *secret, int max_attempts)
{
    struct itest_env env;
    itest_env(&env);
    struct creds_options co = {.access_key = env.access_key,
                               .secret_key = secret ? secret : env.secret_key,
                               .no_imds = true};
    struct s3_error err;
    struct creds_provider *cp = NULL;
    if (creds_provider_new(&co, &cp, &err)) {
        fprintf(stderr, "credentials: %s\n", err.message);
        exit(2);
    }
    struct s3_client_options o = {.endpoint = endpoint ? endpoint : env.endpoint,
                                  .creds = cp,
                                  .connect_timeout_ms = 2000,
                                  .stall_timeout_s = 5};
    o.retry.max_attempts = max_attempts;
    struct s3_client *c = NULL;
    if (s3_client_new(&o, &c, &err)) {
        fprintf(stderr, "client: %s\n", err.message);
        exit(2);
    }
    if (nproviders < 16)
        providers[nproviders++] = cp;
    return c;
}

void itest_client_free(struct s3_client *c)
{
    s3_client_free(c);
}

void itest_bucket(struct s3_client *c, const char *tag, char out[64])
{
    static int n;
    snprintf(out, 64, "s3cfs-t-%s-%d-%d", tag, (int)getpid(), n++);
    struct s3_error err;
    if (s3_create_bucket(c, out, &err)) {
        fprintf(stderr, "create bucket %s: %s %s\n", out, err.code, err.message);
        exit(2);
    }
}

int itest_aws(struct sbuf *out, const char *fmt, ...)
{
    struct sbuf cmd = SBUF_INIT;
    sbuf_appendf(&cmd, "aws --endpoint-url '%s' ", getenv("S3_ENDPOINT"));
    va_list ap;
    va_start(ap, fmt);
    sbuf_vappendf(&cmd, fmt, ap);
    va_end(ap);
    FILE *f = popen(sbuf_str(&cmd), "r");
    sbuf_free(&cmd);
    if (!f)
        return -1;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (out)
            sbuf_append(out, buf, n);
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void itest_fill(char *buf, size_t n, unsigned seed)
{
    unsigned x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (char)(x >> 24);
    }
}
