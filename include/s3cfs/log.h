/* log.h - the one logging macro family.
 *
 * LOGE/LOGW/LOGI/LOGD take printf arguments. A message below the current
 * level costs one integer compare (arguments are not evaluated). Output goes
 * to stderr (foreground) or syslog (after log_use_syslog(true)). Thread-safe:
 * each message is written with a single write/syslog call.
 *
 * Never pass a secret (secret key, session token, Authorization header) to
 * these macros: there is no redaction layer behind them.
 */
#ifndef S3CFS_LOG_H
#define S3CFS_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
    LOGLVL_ERROR = 0,
    LOGLVL_WARN = 1,
    LOGLVL_INFO = 2,
    LOGLVL_DEBUG = 3,
};

/* Read without a lock: a torn read of an int is impossible on our targets and
 * a stale level for one message is harmless. */
extern volatile int s3cfs_log_level;

void log_set_level(enum log_level level);
/* "error", "warn", "info", "debug" (or 0..3); returns -EINVAL otherwise. */
int log_parse_level(const char *name);
void log_use_syslog(bool on);
/* Copies n bytes of in to out (cap bytes, always NUL-terminated) with every
 * control byte (below 0x20, 0x7f) written as \xNN and '\' as "\\", so that
 * a key or a server's text shows as one printable line. Truncates at an
 * escape boundary; returns the length written. log_msg applies it to every
 * message. */
size_t log_escape(const char *in, size_t n, char *out, size_t cap);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_AT(lvl, ...)                                                                           \
    do {                                                                                           \
        if ((int)(lvl) <= s3cfs_log_level)                                                         \
            log_msg((lvl), __VA_ARGS__);                                                           \
    } while (0)

#define LOGE(...) LOG_AT(LOGLVL_ERROR, __VA_ARGS__)
#define LOGW(...) LOG_AT(LOGLVL_WARN, __VA_ARGS__)
#define LOGI(...) LOG_AT(LOGLVL_INFO, __VA_ARGS__)
#define LOGD(...) LOG_AT(LOGLVL_DEBUG, __VA_ARGS__)

#endif
