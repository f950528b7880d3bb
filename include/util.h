/* util.h: checked allocation, fatal-error helpers and exit codes shared by every module. */
#ifndef CLTRAIN_UTIL_H
#define CLTRAIN_UTIL_H

#include <stddef.h>
#include <stdio.h>

/* Exit status conventions (DEVELOPERS.md): 0 ok, 1 runtime failure, 2 usage or bad input. */
enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

#if defined(__GNUC__)
#define CLT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define CLT_NORETURN __attribute__((noreturn))
#else
#define CLT_PRINTF(f, a)
#define CLT_NORETURN
#endif

/* Prints "cltrain: <message>" on stderr and exits with `status`. For the user's mistakes
 * (status 2) and for runtime failures (status 1). */
CLT_NORETURN void die(int status, const char *fmt, ...) CLT_PRINTF(2, 3);
/* Replaces "cltrain" in die's messages (a process of a distributed run names its rank). */
void die_set_prefix(const char *prefix);

/* Checked allocators: on failure they name what was being allocated and its size, exit 1. */
void *xmalloc(size_t bytes, const char *what);
void *xcalloc(size_t count, size_t size, const char *what);
void *xrealloc(void *p, size_t bytes, const char *what);

/* Writes the message into err (when err is non-NULL and errlen > 0) and returns -1, so a
 * reader's or writer's fault is one line: `return fail_msg(err, errlen, "...", ...)`. */
int fail_msg(char *err, size_t errlen, const char *fmt, ...) CLT_PRINTF(3, 4);

/* A growable byte buffer for files built in memory (model files, ONNX): start it as {0},
 * free p when done. byte_buf_put appends n bytes (dies naming `what` when out of memory). */
typedef struct { unsigned char *p; size_t len, cap; } byte_buf;
void byte_buf_put(byte_buf *b, const void *src, size_t n, const char *what);
char *xstrdup(const char *s);

/* Multiplies a*b into *out; returns 0 on overflow (size_t arithmetic from untrusted headers). */
int mul_size(size_t a, size_t b, size_t *out);

/* Monotonic wall clock in seconds. */
double now_seconds(void);

/* Writes `bytes` of `data` to `path` atomically: a temporary file in the same folder, fsync,
 * then rename, so a crash leaves the old file intact. Returns 0, or -1 with errno set. */
int write_file_atomic(const char *path, const void *data, size_t bytes);

/* Reads a whole file; returns NULL with errno set on failure. *len receives the size. */
unsigned char *read_file(const char *path, size_t *len);

/* Removes a file, or a folder and everything under it (best effort: what cannot be removed
 * stays). For the tests' and the benchmark's temporary folders. */
void remove_tree(const char *path);

#endif
