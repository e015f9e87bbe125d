/* s3_list_all and s3_list_all_n: the paging loop of results.c over
 * s3_list_objects, whichever store implements it (ops.c, or the unit
 * tests' fake), so this file is linked with each. */
#include "s3cfs/s3.h"

struct list_src {
    struct s3_client *c;
    const char *bucket, *prefix, *delimiter;
    int max_keys;
};

static int fetch_page(void *arg, const char *token, struct s3_list_page *out, struct s3_error *err)
{
    struct list_src *s = arg;
    return s3_list_objects(s->c, s->bucket, s->prefix, s->delimiter, token, s->max_keys, out, err);
}

int s3_list_all_n(struct s3_client *c, const char *bucket, const char *prefix,
                  const char *delimiter, int max_keys, s3_list_cb cb, void *arg,
                  struct s3_error *err)
{
    struct list_src s = {c, bucket, prefix, delimiter, max_keys};
    return s3_list_walk(fetch_page, &s, cb, arg, err);
}

int s3_list_all(struct s3_client *c, const char *bucket, const char *prefix, const char *delimiter,
                s3_list_cb cb, void *arg, struct s3_error *err)
{
    return s3_list_all_n(c, bucket, prefix, delimiter, 0, cb, arg, err);
}
