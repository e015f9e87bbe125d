/* fuzz_journal: reading a journal left by a previous run (fs/engine/journal.c:
 * record parsing, the live set, what a replay hands over), from memory.
 *
 * Every line carries a checksum, which random bytes almost never match, so
 * the input's first byte chooses: odd, the harness appends each line's
 * correct checksum (the records' fields get fuzzed); even, the bytes go as
 * they are (torn lines, bad sums). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "fuzz.h"
#include "s3cfs/buf.h"
#include "s3cfs/htab.h"
#include "s3cfs/journal.h"
#include "s3cfs/log.h"

/* The journal's line checksum (journal.h: FNV-1a of the line). */
static uint32_t line_sum(const char *s, size_t n)
{
    return hash_fnv1a32(s, n);
}

/* Each complete line of in with " %08x" of its sum before the newline; a
 * last line without a newline stays torn. */
static int add_sums(const char *in, size_t n, struct sbuf *out)
{
    while (n > 0) {
        const char *nl = memchr(in, '\n', n);
        if (!nl)
            return sbuf_append(out, in, n);
        size_t len = (size_t)(nl - in);
        if (sbuf_append(out, in, len) || sbuf_appendf(out, " %08" PRIx32 "\n", line_sum(in, len)))
            return -ENOMEM;
        in += len + 1;
        n -= len + 1;
    }
    return 0;
}

struct seen {
    size_t calls;
    uint64_t max_id;
};

static bool opt_str(const char *s)
{
    return !s || strlen(s) < (1u << 20);
}

static int check_job(void *arg, uint64_t id, const struct job_spec *s)
{
    struct seen *seen = arg;
    seen->calls++;
    FUZZ_CHECK(id > 0 && id <= seen->max_id);
    FUZZ_CHECK(s->kind == JOB_COPY || s->kind == JOB_DELETE);
    FUZZ_CHECK(s->bucket && s->key);
    if (s->kind == JOB_DELETE) /* may carry an M record's metadata: the engine ignores it */
        return 0;
    FUZZ_CHECK(s->src_bucket && s->src_key && opt_str(s->src_etag) && opt_str(s->content_type));
    FUZZ_CHECK(s->meta || s->nmeta == 0);
    for (size_t i = 0; i < s->nmeta; i++)
        FUZZ_CHECK(s->meta[i].name && s->meta[i].value);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) { /* the journal logs every bad record it skips */
        log_set_level(LOGLVL_ERROR);
        quiet = true;
    }
    if (size == 0)
        return 0;
    struct sbuf text = SBUF_INIT;
    const char *in = (const char *)data + 1;
    if (data[0] & 1 ? add_sums(in, size - 1, &text) : sbuf_append(&text, in, size - 1))
        return 0;
    struct journal *j;
    int rc = journal_open_memory(sbuf_str(&text), text.len, &j);
    FUZZ_CHECK(rc == 0 || rc == -ENOMEM);
    if (rc == 0) {
        struct journal_info info;
        journal_info(j, &info);
        FUZZ_CHECK(info.bytes <= text.len);
        struct seen seen = {0, info.max_id};
        FUZZ_CHECK(journal_replay(j, check_job, &seen) == 0);
        FUZZ_CHECK(seen.calls == info.live);
        seen.calls = 0;
        FUZZ_CHECK(journal_replay(j, check_job, &seen) == 0 && seen.calls == 0);
        journal_close(j);
    }
    sbuf_free(&text);
    return 0;
}
