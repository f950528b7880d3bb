/* session.c: data and back-end selection shared by the commands. */
#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "cl_runtime.h"
#include "dist.h"
#include "util.h"

void session_load_data(const options *o, int classes, session_data *d)
{
    memset(d, 0, sizeof *d);
    char err[DATASET_ERR_LEN];
    if (dataset_load(o->data, (size_t)o->test_split, &d->data, err, sizeof err) != 0)
        die(EXIT_USAGE, "%s", err);
    const char *model = o->resume ? o->resume : o->load;
    session_check_classes(o, classes, model);
    if (dataset_pair_set_classes(&d->data, classes ? classes : (int)o->classes, err, sizeof err) != 0) {
        if (classes) die(EXIT_USAGE, "%s: the model %s gives %d classes", err, model, classes);
        die(EXIT_USAGE, "%s; --classes N must cover every label", err);
    }
    dataset *tr = &d->data.train, *te = &d->data.test;
    if (o->train_limit > 0) {
        if ((size_t)o->train_limit > tr->n)
            die(EXIT_USAGE, "--train-limit %ld is more than the %zu training images in %s",
                o->train_limit, tr->n, d->data.source);
        dataset_truncate(tr, (size_t)o->train_limit);
    }
    if (o->test_limit > 0) {
        if ((size_t)o->test_limit > te->n)
            die(EXIT_USAGE, "--test-limit %ld is more than the %zu test images in %s",
                o->test_limit, te->n, d->data.source);
        dataset_truncate(te, (size_t)o->test_limit);
    }
    if (o->val > 0) {
        if ((size_t)o->val >= tr->n)
            die(EXIT_USAGE, "--val %ld leaves no training images (there are %zu)", o->val, tr->n);
        size_t keep = tr->n - (size_t)o->val, px = (size_t)tr->rows * (size_t)tr->cols;
        dataset *v = &d->val;
        *v = *tr;
        v->n = (size_t)o->val;
        v->pixels = xmalloc(v->n * px, "validation images");
        v->labels = xmalloc(v->n, "validation labels");
        memcpy(v->pixels, tr->pixels + keep * px, v->n * px);
        memcpy(v->labels, tr->labels + keep, v->n);
        dataset_truncate(tr, keep);
    }
    if (o->batch > 0 && (size_t)o->batch > tr->n)
        die(EXIT_USAGE, "--batch %ld is larger than the %zu training images", o->batch, tr->n);
}

void session_check_classes(const options *o, int classes, const char *model)
{
    if (classes && o->classes && o->classes != classes)
        die(EXIT_USAGE, "--classes %ld, but the model %s has %d classes; leave --classes out",
            o->classes, model ? model : "", classes);
}

/* One name a line; a trailing '\r' and trailing blank lines are ignored. */
static char **read_class_names(const char *path, int classes)
{
    size_t len;
    char *text = (char *)read_file(path, &len);
    if (!text) die(EXIT_USAGE, "--class-names %s: cannot read: %s", path, strerror(errno));
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) len--;
    char **names = xcalloc((size_t)classes, sizeof *names, "class names");
    int n = 0;
    for (size_t pos = 0; pos <= len && len > 0;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, e = end;
        if (e > pos && text[e - 1] == '\r') e--;
        if (n < classes) {
            const char *why = class_name_fault(text + pos, e - pos);
            if (why) die(EXIT_USAGE, "%s:%d: the class name %s", path, n + 1, why);
            names[n] = xmalloc(e - pos + 1, "a class name");
            memcpy(names[n], text + pos, e - pos);
            names[n][e - pos] = 0;
        }
        n++;
        pos = end + 1;
    }
    free(text);
    if (n != classes)
        die(EXIT_USAGE, "%s has %d class names, the data has %d classes; expected one name a line",
            path, n, classes);
    return names;
}

char **session_class_names(const options *o, int classes, char *const *model_names)
{
    if (o->class_names) return read_class_names(o->class_names, classes);
    if (model_names) return class_names_copy(model_names, classes);
    struct stat st;
    if (!o->data || stat(o->data, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    size_t len = strlen(o->data) + sizeof "/" CLASS_NAMES_FILE;
    char *path = xmalloc(len, "a file name");
    snprintf(path, len, "%s/%s", o->data, CLASS_NAMES_FILE);
    char **names = access(path, F_OK) == 0 ? read_class_names(path, classes) : NULL;
    free(path);
    return names;
}

void session_free_data(session_data *d)
{
    dataset_pair_free(&d->data);
    if (d->val.pixels) dataset_free(&d->val);
}

/* Under mpirun every rank says where it runs (with its pid, for whoever must stop it). */
static void say_device(const backend *be, int index)
{
    if (dist_size() == 1) return;
    const char *name = backend_device_name(be);
    char dev[32] = "host (plain C)";
    if (index >= 0) snprintf(dev, sizeof dev, "%d", index);
    fprintf(stderr, "cltrain[rank %d]: pid %ld, device %s%s%s\n", dist_rank(), (long)getpid(), dev,
            name ? ": " : "", name ? name : "");
}

backend *session_open_backend(const options *o)
{
    if (o->device_host) {
        backend *be = backend_host_create();
        say_device(be, -1);
        return be;
    }
    clrt_require_device(0);   /* the one message when there is no device at all */
    int device = o->device;
    /* One device per rank of a machine: several GPUs are used one each. More ranks than
     * devices share them round-robin (PoCL: each rank its own CPU device). */
    if (!o->device_given && dist_size() > 1) {
        clrt_device_desc *devs = NULL;
        device = dist_local_rank() % clrt_list_devices(&devs);
        free(devs);
    }
    clrt_require_device(device);
    backend_cl_options bo = {
        .gemm = o->gemm < 0 ? GEMM_BUILTIN : (gemm_kind)o->gemm,
        .kernels = o->kernels,
        .profiling = o->profile,
        .no_cache = o->no_cache,
        .step = o->step,
    };
    backend *be = backend_cl_create(device, &bo);
    say_device(be, device);
    return be;
}

int session_list_devices(void)
{
    clrt_device_desc *devs = NULL;
    int n = clrt_list_devices(&devs);
    if (n == 0) clrt_require_device(0); /* its message for "no device", exit 1 */
    clrt_print_devices(stdout, devs, n);
    free(devs);
    return EXIT_OK;
}
