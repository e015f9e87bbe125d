#include "s3cfs/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void s3_error_clear(struct s3_error *e)
{
    memset(e, 0, sizeof *e);
}

static void copy_trunc(char *dst, size_t size, const char *src)
{
    if (!src)
        src = "";
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void s3_error_set(struct s3_error *e, const char *code, const char *message)
{
    copy_trunc(e->code, sizeof e->code, code);
    copy_trunc(e->message, sizeof e->message, message);
}

struct code_map {
    const char *code;
    int err; /* positive errno */
};

/* Codes from the S3 API reference ("Error responses"), plus radosgw's and
 * the transport tags set by http.c. Anything absent falls back on status. */
static const struct code_map code_table[] = {
    {"AccessDenied", EACCES},
    {"AccountProblem", EACCES},
    {"AllAccessDisabled", EACCES},
    {"InvalidAccessKeyId", EACCES},
    {"SignatureDoesNotMatch", EACCES},
    {"ExpiredToken", EACCES},
    {"InvalidToken", EACCES},
    {"TokenRefreshRequired", EACCES},
    {"RequestTimeTooSkewed", EACCES},
    {"InvalidObjectState", EACCES},
    {"NoSuchBucket", ENOENT},
    {"NoSuchKey", ENOENT},
    {"NoSuchUpload", ENOENT},
    {"NoSuchVersion", ENOENT},
    {"NotFound", ENOENT},
    {"BucketAlreadyExists", EEXIST},
    {"BucketAlreadyOwnedByYou", EEXIST},
    {"BucketNotEmpty", ENOTEMPTY},
    {"PreconditionFailed", ESTALE},
    {"EntityTooLarge", EFBIG},
    {"EntityTooSmall", EINVAL},
    {"InvalidPart", EINVAL},
    {"InvalidPartOrder", EINVAL},
    {"InvalidRange", EINVAL},
    {"InvalidArgument", EINVAL},
    {"InvalidRequest", EINVAL},
    {"InvalidBucketName", EINVAL},
    {"InvalidDigest", EIO},
    {"BadDigest", EIO},
    {"KeyTooLongError", ENAMETOOLONG},
    {"MetadataTooLarge", E2BIG},
    {"MalformedXML", EINVAL},
    {"MissingContentLength", EINVAL},
    {"NotImplemented", ENOTSUP},
    {"MethodNotAllowed", EPERM},
    {"QuotaExceeded", EDQUOT},
    {"TooManyBuckets", EDQUOT},
    {"ServiceUnavailable", EAGAIN},
    {"SlowDown", EAGAIN},
    {"Throttling", EAGAIN},
    {"ThrottlingException", EAGAIN},
    {"RequestTimeout", ETIMEDOUT},
    {"InternalError", EIO},
    {"OperationAborted", EAGAIN},
    {"ConnectFailed", EHOSTUNREACH},
    {"ResolveFailed", EHOSTUNREACH},
    {"Timeout", ETIMEDOUT},
    {"ConnectionReset", ECONNRESET},
    {"TransportError", EIO},
    {"TLSError", EPROTO},
    {"BadResponse", EPROTO},
    {"NoMemory", ENOMEM},
};

int s3_errno_for(const char *code, int http_status)
{
    if (code && *code)
        for (size_t i = 0; i < sizeof code_table / sizeof code_table[0]; i++)
            if (strcmp(code, code_table[i].code) == 0)
                return -code_table[i].err;
    switch (http_status) {
    case 301:
    case 307:
    case 400:
        return -EINVAL;
    case 401:
    case 403:
        return -EACCES;
    case 404:
        return -ENOENT;
    case 405:
        return -EPERM;
    case 409:
        return -EBUSY;
    case 411:
        return -EINVAL;
    case 412:
        return -ESTALE;
    case 416:
        return -EINVAL;
    case 429:
    case 503:
        return -EAGAIN;
    case 501:
        return -ENOTSUP;
    default:
        return -EIO;
    }
}

static bool code_is(const struct s3_error *e, const char *const *codes)
{
    for (; *codes; codes++)
        if (strcmp(e->code, *codes) == 0)
            return true;
    return false;
}

bool s3_error_throttled(const struct s3_error *e)
{
    static const char *const codes[] = {
        "SlowDown",           "Throttling",           "ThrottlingException",
        "ServiceUnavailable", "RequestLimitExceeded", NULL};
    return e->http_status == 503 || e->http_status == 429 || code_is(e, codes);
}

bool s3_error_retryable(const struct s3_error *e)
{
    static const char *const codes[] = {"RequestTimeout",  "InternalError", "OperationAborted",
                                        "ConnectionReset", "Timeout",       "TransportError",
                                        "ConnectFailed",   "BadResponse",   NULL};
    if (s3_error_throttled(e) || code_is(e, codes))
        return true;
    if (e->http_status >= 500)
        return true;
    return e->http_status == 0 && e->curl_code != 0;
}

const char *s3_error_format(const struct s3_error *e, char *buf, unsigned size)
{
    int n = snprintf(buf, size, "%s: %s", e->code[0] ? e->code : "Error",
                     e->message[0] ? e->message : "(no message)");
    if (n < 0 || (unsigned)n >= size)
        return buf;
    char extra[200] = "";
    int m = 0;
    if (e->http_status)
        m += snprintf(extra + m, sizeof extra - m, "HTTP %d", e->http_status);
    if (e->request_id[0])
        m += snprintf(extra + m, sizeof extra - m, "%srequest id %s", m ? ", " : "", e->request_id);
    if (e->attempts > 1)
        snprintf(extra + m, sizeof extra - m, "%safter %d attempts", m ? ", " : "", e->attempts);
    if (extra[0] && m >= 0)
        snprintf(buf + n, size - n, " (%s)", extra);
    return buf;
}
