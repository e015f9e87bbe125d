#include "s3cfs/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

volatile int s3cfs_log_level = LOGLVL_WARN;
static volatile int use_syslog;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
    s3cfs_log_level = (int)level;
}

int log_parse_level(const char *name)
{
    for (int i = 0; i <= LOGLVL_DEBUG; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    if (name[0] >= '0' && name[0] <= '3' && name[1] == '\0')
        return name[0] - '0';
    if (strcmp(name, "warning") == 0)
        return LOGLVL_WARN;
    return -EINVAL;
}

void log_use_syslog(bool on)
{
    if (on && !use_syslog)
        openlog("s3cfs", LOG_PID, LOG_DAEMON);
    use_syslog = on;
}

size_t log_escape(const char *in, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        bool raw = c >= 0x20 && c != 0x7f && c != '\\';
        size_t need = raw ? 1 : c == '\\' ? 2 : 4;
        if (o + need >= cap)
            break; /* truncated, but never in the middle of an escape */
        if (raw) {
            out[o++] = (char)c;
        } else if (c == '\\') {
            out[o++] = '\\';
            out[o++] = '\\';
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    char raw[2048], msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    if (len < 0)
        len = 0;
    /* a key or a server's message may hold any byte: none reaches a
     * terminal or syslog raw */
    log_escape(raw, (size_t)len < sizeof raw ? (size_t)len : sizeof raw - 1, msg, sizeof msg);
    if (use_syslog) {
        syslog(prio[level], "%s", msg);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2200];
    int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld s3cfs %s: %s\n", tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], msg);
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    /* one write() so that lines from several threads do not interleave */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
