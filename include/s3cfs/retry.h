/* retry.h - when and how long to wait before sending a request again.
 *
 * Exponential backoff with "full jitter": attempt n (1-based, the attempt
 * that just failed) waits a uniformly random time in [0, min(cap, base*2^n)).
 * Throttling answers (503 SlowDown) start from a larger base, because the
 * store asked us to slow down, not just to try again. Pure functions: the
 * random source is passed in, so tests can pin it.
 */
#ifndef S3CFS_RETRY_H
#define S3CFS_RETRY_H

#include <stdbool.h>
#include <stdint.h>

struct retry_policy {
    int max_attempts;     /* total sends, >= 1; default 8 */
    int base_ms;          /* default 50 */
    int throttle_base_ms; /* default 200 */
    int cap_ms;           /* default 10000 */
};

void retry_policy_default(struct retry_policy *p);

/* Milliseconds to sleep after failed attempt `attempt` (1-based); rnd is a
 * uniformly random 32-bit value. */
int retry_backoff_ms(const struct retry_policy *p, int attempt, bool throttled, uint32_t rnd);

/* A thread-safe 32-bit random value for jitter (not for cryptography). */
uint32_t retry_random(void);

#endif
