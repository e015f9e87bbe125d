#include "s3cfs/retry.h"

#include <stdatomic.h>
#include <time.h>

void retry_policy_default(struct retry_policy *p)
{
    p->max_attempts = 8;
    p->base_ms = 50;
    p->throttle_base_ms = 200;
    p->cap_ms = 10000;
}

int retry_backoff_ms(const struct retry_policy *p, int attempt, bool throttled, uint32_t rnd)
{
    int64_t ceiling = throttled ? p->throttle_base_ms : p->base_ms;
    for (int i = 1; i < attempt && ceiling < p->cap_ms; i++)
        ceiling *= 2;
    if (ceiling > p->cap_ms)
        ceiling = p->cap_ms;
    if (ceiling <= 0)
        return 0;
    return (int)(rnd % (uint64_t)ceiling);
}

/* splitmix64 over an atomic counter: lock-free and good enough for jitter */
uint32_t retry_random(void)
{
    static _Atomic uint64_t state;
    uint64_t s = atomic_load(&state);
    if (s == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ 0x5bd1e995u;
        uint64_t expected = 0;
        atomic_compare_exchange_strong(&state, &expected, seed);
    }
    uint64_t z = atomic_fetch_add(&state, 0x9e3779b97f4a7c15ULL) + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (uint32_t)((z ^ (z >> 31)) >> 16);
}
