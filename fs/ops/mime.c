/* mime.c - extension -> Content-Type, from /etc/mime.types. */
#include "s3cfs/mime.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3cfs/log.h"

struct mime_entry {
    char ext[MIME_EXT_MAX + 1];
    const char *type; /* into types */
};

struct mime_table {
    struct mime_entry *v; /* sorted by ext, unique */
    size_t n;
    char *types; /* the file's text, types NUL-terminated in place */
};

static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct mime_entry *)a)->ext, ((const struct mime_entry *)b)->ext);
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* One line "type ext ext ..." (modified in place): its extensions added. */
static int add_line(struct mime_table *t, char *line, size_t *cap)
{
    char *save = NULL;
    char *type = strtok_r(line, " \t\r", &save);
    if (!type || type[0] == '#' || strlen(type) > MIME_TYPE_MAX || !strchr(type, '/'))
        return 0;
    for (char *ext; (ext = strtok_r(NULL, " \t\r", &save)) != NULL;) {
        if (ext[0] == '#')
            break;
        if (strlen(ext) > MIME_EXT_MAX || t->n >= MIME_ENTRIES_MAX)
            continue;
        if (t->n == *cap) {
            size_t nc = *cap ? *cap * 2 : 1024;
            struct mime_entry *v = realloc(t->v, nc * sizeof *v);
            if (!v)
                return -ENOMEM;
            t->v = v;
            *cap = nc;
        }
        struct mime_entry *e = &t->v[t->n++];
        size_t i = 0;
        for (; ext[i]; i++)
            e->ext[i] = lower(ext[i]);
        e->ext[i] = '\0';
        e->type = type;
    }
    return 0;
}

/* Sort, and keep the first type given for an extension (as s3fs's map). */
static void sort_unique(struct mime_table *t)
{
    if (t->n == 0)
        return;
    /* qsort is not stable: of duplicates, keep the type that comes first
     * in the file (all types point into one buffer, in file order) */
    qsort(t->v, t->n, sizeof *t->v, cmp_entry);
    size_t w = 1;
    for (size_t r = 1; r < t->n; r++) {
        if (strcmp(t->v[r].ext, t->v[w - 1].ext) != 0)
            t->v[w++] = t->v[r];
        else if (t->v[r].type < t->v[w - 1].type)
            t->v[w - 1].type = t->v[r].type;
    }
    t->n = w;
}

static int parse(struct mime_table *t, char *text)
{
    size_t cap = 0;
    int rc = 0;
    for (char *line = text; rc == 0 && line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        while (is_space(*line))
            line++;
        rc = add_line(t, line, &cap);
        line = nl ? nl + 1 : NULL;
    }
    sort_unique(t);
    return rc;
}

static char *read_bounded(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        LOGW("%s: %s: new files get no Content-Type", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MIME_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, MIME_FILE_MAX, f) : 0;
    if (buf)
        buf[n] = '\0';
    if (buf && n == MIME_FILE_MAX)
        LOGW("%s: larger than %d bytes: the rest is ignored", path, MIME_FILE_MAX);
    fclose(f);
    return buf;
}

int mime_load(const char *path, struct mime_table **out)
{
    struct mime_table *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->types = read_bounded(path);
    int rc = t->types ? parse(t, t->types) : 0;
    if (rc) {
        mime_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void mime_free(struct mime_table *t)
{
    if (!t)
        return;
    free(t->v);
    free(t->types);
    free(t);
}

size_t mime_count(const struct mime_table *t)
{
    return t ? t->n : 0;
}

/* The type of extension [ext, ext+len), or NULL. */
static const char *find_ext(const struct mime_table *t, const char *ext, size_t len)
{
    struct mime_entry key;
    if (len == 0 || len > MIME_EXT_MAX || t->n == 0) /* bsearch wants an array */
        return NULL;
    for (size_t i = 0; i < len; i++)
        key.ext[i] = lower(ext[i]);
    key.ext[len] = '\0';
    const struct mime_entry *e = bsearch(&key, t->v, t->n, sizeof *t->v, cmp_entry);
    return e ? e->type : NULL;
}

void mime_type(const struct mime_table *t, const char *path, char *out, size_t size)
{
    out[0] = '\0';
    if (!t || size == 0)
        return;
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    const char *last = strrchr(name, '.');
    if (!last || last == name) /* no extension, or a dot file */
        return;
    const char *type = find_ext(t, last + 1, strlen(last + 1));
    if (!type) { /* the extension before it: s3fs's second try */
        const char *prev = last;
        while (prev > name && prev[-1] != '.')
            prev--;
        if (prev > name + 1)
            type = find_ext(t, prev, (size_t)(last - prev));
    }
    if (type)
        snprintf(out, size, "%s", type);
}
