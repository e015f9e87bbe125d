/* error.h - how S3 failures travel.
 *
 * Convention everywhere: functions return 0 or a negative errno. When the
 * failure came from the server (or the transport), the details travel in a
 * struct s3_error the caller passes in, for logs and for the status
 * interface; the errno is what the caller acts on.
 *
 * S3 error codes are mapped to errno in exactly one table (error.c,
 * s3_errno_for()). The struct is plain data: no heap, copy it freely.
 */
#ifndef S3CFS_ERROR_H
#define S3CFS_ERROR_H

#include <stdbool.h>

struct s3_error {
    int http_status;     /* 0 when no HTTP answer was received */
    int curl_code;       /* CURLcode of the transport, 0 if none */
    int attempts;        /* how many times the request was sent */
    char code[64];       /* S3 <Code>, or a transport tag like "ConnectFailed" */
    char message[256];   /* S3 <Message> or the transport's text */
    char request_id[64]; /* x-amz-request-id, if any */
    char resource[256];  /* what the request was about (bucket/key) */
};

void s3_error_clear(struct s3_error *e);
/* Fill code/message (truncating); keeps the other fields. */
void s3_error_set(struct s3_error *e, const char *code, const char *message);

/* The one table: S3 error code (and HTTP status when the code is unknown or
 * absent, as for HEAD answers without a body) -> negative errno. */
int s3_errno_for(const char *code, int http_status);

/* Whether a failure with this code/status is worth sending again: 5xx,
 * 503 SlowDown, RequestTimeout, throttling codes, and transport failures
 * (http_status 0 with a curl code). Other 4xx are final. */
bool s3_error_retryable(const struct s3_error *e);
/* Whether the server asked us to slow down (503, SlowDown, Throttling...). */
bool s3_error_throttled(const struct s3_error *e);

/* "Code: message (HTTP 403, request id ..., after N attempts)" into buf. */
const char *s3_error_format(const struct s3_error *e, char *buf, unsigned size);

#endif
