#include "s3cfs/kernel_evict.h"

#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "s3cfs/log.h"

#define RING (KEVICT_BACKLOG * 2)

struct kevict {
    struct fuse_session *se; /* read-only after kevict_new */
    char *mountpoint;        /* read-only after kevict_new */
    size_t keep;             /* read-only after kevict_new */
    pthread_t thread;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t work;
    char **kept; /* ring of the last keep closed paths */
    size_t kept_head, kept_n;
    char *due[RING]; /* ring of paths to drop from the kernel */
    size_t due_head, due_n;
    bool stopping;
    unsigned long sent;
    /* the thread's own: the last directory looked up */
    char last_dir[4096];
    unsigned long last_ino;
};

static void due_push(struct kevict *t, char *path)
{
    if (t->due_n == KEVICT_BACKLOG) { /* behind: that entry stays cached */
        free(t->due[t->due_head]);
        t->due_head = (t->due_head + 1) % RING;
        t->due_n--;
    }
    t->due[(t->due_head + t->due_n) % RING] = path;
    t->due_n++;
    pthread_cond_signal(&t->work);
}

void kevict_note(struct kevict *t, const char *path)
{
    if (!t || strcmp(path, "/") == 0)
        return;
    char *p = strdup(path);
    if (!p)
        return;
    pthread_mutex_lock(&t->lock);
    if (!t->stopping) {
        if (t->kept_n == t->keep) {
            due_push(t, t->kept[t->kept_head]);
            t->kept_head = (t->kept_head + 1) % t->keep;
            t->kept_n--;
        }
        t->kept[(t->kept_head + t->kept_n) % t->keep] = p;
        t->kept_n++;
        p = NULL;
    }
    pthread_mutex_unlock(&t->lock);
    free(p);
}

/* The node id of path's directory: its inode number through the mount
 * (libfuse reports node ids as inode numbers). 0 when it is gone. */
static unsigned long dir_ino(struct kevict *t, const char *dir)
{
    if (strcmp(dir, t->last_dir) == 0)
        return t->last_ino;
    char full[8192];
    snprintf(full, sizeof full, "%s%s", t->mountpoint, dir);
    struct stat st;
    if (lstat(full, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    snprintf(t->last_dir, sizeof t->last_dir, "%s", dir);
    t->last_ino = (unsigned long)st.st_ino;
    return t->last_ino;
}

/* Drop one name from the kernel's cache. No lock is held: the kernel may
 * make the notification wait for an operation on the directory. */
static void drop(struct kevict *t, char *path)
{
    char *slash = strrchr(path, '/');
    *slash = '\0';
    unsigned long ino = dir_ino(t, slash == path ? "/" : path);
    if (ino == 0)
        return;
    const char *name = slash + 1;
    int rc = fuse_lowlevel_notify_inval_entry(t->se, ino, name, strlen(name));
    if (rc == -ENOENT)
        t->last_dir[0] = '\0'; /* that directory may be another one now */
    pthread_mutex_lock(&t->lock);
    t->sent += rc == 0;
    pthread_mutex_unlock(&t->lock);
}
void kevict_forget_attrs(struct kevict *t, const char *path)
{
    if (!t)
        return;
    char full[8192];
    snprintf(full, sizeof full, "%s%s", t->mountpoint, path);
    struct stat st;
    if (lstat(full, &st) == 0) /* offset -1: the attributes only */
        fuse_lowlevel_notify_inval_inode(t->se, (fuse_ino_t)st.st_ino, -1, 0);
}

static void *kevict_main(void *arg)
{
    struct kevict *t = arg;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        while (t->due_n == 0 && !t->stopping)
            pthread_cond_wait(&t->work, &t->lock);
        if (t->stopping)
            break;
        char *p = t->due[t->due_head];
        t->due_head = (t->due_head + 1) % RING;
        t->due_n--;
        pthread_mutex_unlock(&t->lock);
        drop(t, p);
        free(p);
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int kevict_new(struct fuse_session *se, const char *mountpoint, size_t keep, struct kevict **out)
{
    struct kevict *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->se = se;
    t->keep = keep ? keep : 1;
    t->kept = calloc(t->keep, sizeof *t->kept);
    t->mountpoint = strdup(mountpoint);
    if (!t->kept || !t->mountpoint) {
        free(t->kept);
        free(t->mountpoint);
        free(t);
        return -ENOMEM;
    }
    /* a trailing slash would double in the paths built from it */
    size_t ml = strlen(t->mountpoint);
    if (ml > 1 && t->mountpoint[ml - 1] == '/')
        t->mountpoint[ml - 1] = '\0';
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->work, NULL);
    int rc = pthread_create(&t->thread, NULL, kevict_main, t);
    if (rc) {
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->work);
        free(t->kept);
        free(t->mountpoint);
        free(t);
        return -rc;
    }
    *out = t;
    return 0;
}

void kevict_stop(struct kevict *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    pthread_cond_signal(&t->work);
    pthread_mutex_unlock(&t->lock);
}

void kevict_free(struct kevict *t)
{
    if (!t)
        return;
    kevict_stop(t);
    pthread_join(t->thread, NULL);
    for (size_t i = 0; i < t->kept_n; i++)
        free(t->kept[(t->kept_head + i) % t->keep]);
    for (size_t i = 0; i < t->due_n; i++)
        free(t->due[(t->due_head + i) % RING]);
    LOGD("kernel_evict: %lu kernel entries dropped", t->sent);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->work);
    free(t->kept);
    free(t->mountpoint);
    free(t);
}

unsigned long kevict_sent(struct kevict *t)
{
    pthread_mutex_lock(&t->lock);
    unsigned long n = t->sent;
    pthread_mutex_unlock(&t->lock);
    return n;
}
