/* output_paths.c: two outputs naming one file would overwrite each other at the end of a run
 * (a model file over the log, say); this catches it before the data is even read. */
#define _XOPEN_SOURCE 700   /* realpath */
#include "output_paths.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

typedef struct {
    const char *flag, *path;
} output;

/* The absolute form of path into out (PATH_MAX): realpath when it exists, else realpath of its
 * folder plus the last component, else the path as written. */
static void canonical(const char *given, char *out)
{
    char dir[PATH_MAX], real[PATH_MAX], path[PATH_MAX];
    snprintf(path, sizeof path, "%s", given);
    for (size_t n = strlen(path); n > 1 && path[n - 1] == '/'; n--) path[n - 1] = 0;   /* "d/" is d */
    if (realpath(path, real)) {
        snprintf(out, PATH_MAX, "%s", real);
        return;
    }
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    if (slash == path) snprintf(dir, sizeof dir, "/");
    else if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else snprintf(dir, sizeof dir, ".");
    size_t rl, bl = strlen(base);
    if (*base && realpath(dir, real) && (rl = strlen(real)) + bl + 2 <= PATH_MAX) {
        if (strcmp(real, "/") == 0) rl = 0;
        memcpy(out, real, rl);
        out[rl] = '/';
        memcpy(out + rl + 1, base, bl + 1);
    } else {
        snprintf(out, PATH_MAX, "%s", path);
    }
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    static char ca[PATH_MAX], cb[PATH_MAX];
    canonical(a, ca);
    canonical(b, cb);
    return strcmp(ca, cb) == 0;
}

void output_paths_check(const options *o)
{
    /* --plot without --log writes its log to DIR/log.csv (train_cmd.c). */
    char plot_log[PATH_MAX] = "";
    if (o->plot && !o->log) snprintf(plot_log, sizeof plot_log, "%s/log.csv", o->plot);
    output outs[] = {
        {"--save", o->save}, {"--checkpoint", o->checkpoint}, {"--log", o->log},
        {"--export-npy", o->export_npy}, {"--plot", o->plot}, {"--out", o->out},
        {"--grid", o->grid}, {"--plot's log", *plot_log ? plot_log : NULL},
        {"--export-onnx", o->export_onnx}, {"--predictions", o->predictions},
    };
    size_t n = sizeof outs / sizeof outs[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (outs[i].path && outs[j].path && same_file(outs[i].path, outs[j].path))
                die(EXIT_USAGE, "%s %s and %s %s name the same file; give each output its own",
                    outs[i].flag, outs[i].path, outs[j].flag, outs[j].path);
}
