#include "itest.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

static pid_t proxy_pid;
static char proxy_url[64];

const char *itest_proxy_start(const char *args)
{
    const char *bin = getenv("S3CFS_PROXY");
    const char *up = getenv("S3_ENDPOINT");
    if (!bin || !up || strncmp(up, "http://", 7) != 0) {
        fprintf(stderr, "itest: S3CFS_PROXY or S3_ENDPOINT missing\n");
        exit(2);
    }
    char portfile[] = "/tmp/s3cfs-proxy-port-XXXXXX";
    int fd = mkstemp(portfile);
    close(fd);
    unlink(portfile);
    struct sbuf cmd = SBUF_INIT;
    sbuf_appendf(&cmd,
                 "exec '%s' --upstream %s --listen 127.0.0.1:0 --port-file %s --quiet "
                 "--max-seconds 1200 %s >/dev/null 2>&1",
                 bin, up + 7, portfile, args ? args : "");
    proxy_pid = fork();
    if (proxy_pid == 0) {
        execl("/bin/sh", "sh", "-c", sbuf_str(&cmd), (char *)NULL);
        _exit(127);
    }
    sbuf_free(&cmd);
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(portfile, "r");
        int port = 0;
        if (f && fscanf(f, "%d", &port) == 1 && port > 0) {
            fclose(f);
            unlink(portfile);
            snprintf(proxy_url, sizeof proxy_url, "http://127.0.0.1:%d", port);
            return proxy_url;
        }
        if (f)
            fclose(f);
        usleep(50000);
    }
    fprintf(stderr, "itest: the proxy did not start\n");
    exit(2);
}

void itest_proxy_stop(void)
{
    if (proxy_pid > 0) {
        kill(proxy_pid, SIGTERM);
        waitpid(proxy_pid, NULL, 0);
    }
    proxy_pid = 0;
}

static size_t collect_body(char *p, size_t size, size_t n, void *arg)
{
    sbuf_append(arg, p, size * n);
    return size * n;
}

static int proxy_call(const char *method, const char *path, struct sbuf *out)
{
    CURL *h = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "%s%s", proxy_url, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    long status = 0;
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return rc == CURLE_OK && status == 200 ? 0 : -1;
}

long itest_proxy_count(const char *kind)
{
    struct sbuf out = SBUF_INIT;
    long n = -1;
    if (proxy_call("GET", "/__proxy/stats", &out) == 0) {
        n = 0; /* a kind never seen has no line */
        size_t klen = strlen(kind);
        for (const char *l = sbuf_str(&out); l && *l;
             l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
            if (strncmp(l, kind, klen) == 0 && l[klen] == ' ')
                n = atol(l + klen + 1);
    }
    sbuf_free(&out);
    return n;
}

int itest_proxy_reset(void)
{
    struct sbuf out = SBUF_INIT;
    int rc = proxy_call("POST", "/__proxy/reset", &out);
    sbuf_free(&out);
    return rc;
}

int itest_proxy_config(const char *query)
{
    struct sbuf out = SBUF_INIT;
    char path[512];
    snprintf(path, sizeof path, "/__proxy/config?%s", query);
    int rc = proxy_call("POST", path, &out);
    sbuf_free(&out);
    return rc;
}
