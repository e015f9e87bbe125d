/* buf.h - growable byte buffer.
 *
 * Contract: a struct sbuf owns its heap storage. After sbuf_init() it is
 * empty with data == NULL; once anything is appended, data is always
 * NUL-terminated (the terminator is not counted in len), so a buffer built
 * from text can be used as a C string. Appends return 0 or -ENOMEM; on
 * -ENOMEM the buffer keeps its previous content. Not thread-safe: one owner.
 *
 * A buffer made with SBUF_SECRET_INIT (or sbuf_init_secret) is for text
 * holding a secret: every block it lets go of is zeroed first, when it
 * grows (no realloc leaving a copy behind) and when it is freed.
 */
#ifndef S3CFS_BUF_H
#define S3CFS_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct sbuf {
    char *data;
    size_t len;
    size_t cap;
    bool secret; /* wipe every block let go of */
};

#define SBUF_INIT                                                                                  \
    {                                                                                              \
        NULL, 0, 0, false                                                                          \
    }
#define SBUF_SECRET_INIT                                                                           \
    {                                                                                              \
        NULL, 0, 0, true                                                                           \
    }

void sbuf_init(struct sbuf *b);
void sbuf_init_secret(struct sbuf *b);
/* Frees the storage (wiped first for a secret buffer); the buffer is left
 * empty and keeps its kind. */
void sbuf_free(struct sbuf *b);
/* Empty the buffer but keep its storage for reuse. */
void sbuf_reset(struct sbuf *b);
int sbuf_reserve(struct sbuf *b, size_t extra);
int sbuf_append(struct sbuf *b, const void *p, size_t n);
int sbuf_append_str(struct sbuf *b, const char *s);
int sbuf_append_char(struct sbuf *b, char c);
int sbuf_appendf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sbuf_vappendf(struct sbuf *b, const char *fmt, va_list ap);
/* The C string held (never NULL: "" for an empty buffer). */
const char *sbuf_str(const struct sbuf *b);
/* Hand the storage to the caller (free() it); the buffer is left empty.
 * Returns a heap "" for an empty buffer, NULL only on ENOMEM. */
char *sbuf_detach(struct sbuf *b);

/* Frees N bytes at P after zeroing them with a store the compiler may not
 * drop: every heap block that held a secret goes through here. P may be
 * NULL. */
void wipe_free(void *p, size_t n);
/* Tests only: called with each block just before wipe_free() frees it, so
 * a test can check that the bytes are zero. NULL (the default): nothing. */
extern void (*wipe_free_hook)(const void *p, size_t n);

#endif
