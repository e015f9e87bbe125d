/* fuzz_uri: uri_decode (ListObjectsV2 keys with EncodingType=url, s3fs'
 * xattr header) on any bytes, and the round trips with uri_encode: what
 * encode writes, decode reads back byte for byte. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "s3cfs/uri.h"

static void roundtrip(const char *s, size_t n, bool keep_slash)
{
    struct sbuf enc = SBUF_INIT, dec = SBUF_INIT;
    FUZZ_CHECK(uri_encode(&enc, s, n, keep_slash) == 0);
    for (size_t i = 0; i < enc.len; i++) /* nothing but the unreserved set, '%' and maybe '/' */
        FUZZ_CHECK(strchr("-_.~%", enc.data[i]) || (keep_slash && enc.data[i] == '/') ||
                   (enc.data[i] >= 'A' && enc.data[i] <= 'Z') ||
                   (enc.data[i] >= 'a' && enc.data[i] <= 'z') ||
                   (enc.data[i] >= '0' && enc.data[i] <= '9'));
    FUZZ_CHECK(uri_decode(&dec, sbuf_str(&enc), enc.len, false) == 0);
    FUZZ_CHECK(dec.len == n && (n == 0 || memcmp(dec.data, s, n) == 0));
    sbuf_free(&enc);
    sbuf_free(&dec);
}

static void decode(const char *s, size_t n, bool plus)
{
    struct sbuf out = SBUF_INIT;
    FUZZ_CHECK(sbuf_append_str(&out, "prefix") == 0);
    int rc = uri_decode(&out, s, n, plus);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    if (rc == 0) {
        FUZZ_CHECK(out.len >= 6 && out.len - 6 <= n && out.data[out.len] == '\0');
        roundtrip(out.data + 6, out.len - 6, false);
    } else {
        FUZZ_CHECK(out.len == 6 && strcmp(out.data, "prefix") == 0); /* left as it was */
    }
    sbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    decode(s, size, false);
    decode(s, size, true);
    roundtrip(s, size, true);
    return 0;
}
