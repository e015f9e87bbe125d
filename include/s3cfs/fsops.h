/* fsops.h - the FUSE operations of s3cfs (libfuse high-level, path-based).
 * Every op returns 0 / a count, or a negative errno, as FUSE expects. */
#ifndef S3CFS_FSOPS_H
#define S3CFS_FSOPS_H

#define FUSE_USE_VERSION 314
#include <fuse.h>

#include "s3cfs/fs.h"

const struct fuse_operations *fsops_table(void);

#endif
