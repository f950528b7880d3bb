/* session.h: what every command shares: the data chosen by the options (with limits and the
 * validation hold-out applied) and the back-end chosen by --device. Faults exit with the
 * documented status (2 bad input or usage, 1 runtime). */
#ifndef CLTRAIN_SESSION_H
#define CLTRAIN_SESSION_H

#include "backend.h"
#include "dataset.h"
#include "options.h"

typedef struct {
    dataset_pair data;
    dataset val;          /* the last --val training images, moved out of the training set */
} session_data;

/* `classes`: the model's class count (predict, eval, --load, --resume), or 0 for --classes
 * or the data's own count; every label must be below it, or the run exits 2. */
void session_load_data(const options *o, int classes, session_data *d);
/* Exits 2 when --classes disagrees with the model's `classes` (0: no model). */
void session_check_classes(const options *o, int classes, const char *model);

/* The file beside a data folder's images that names its classes, one a line. */
#define CLASS_NAMES_FILE "class-names.txt"
/* The class names for `classes` classes: --class-names, else the model's (model_names, may
 * be NULL), else --data's CLASS_NAMES_FILE when it is a folder holding one; NULL when none.
 * A file with the wrong count or a bad name exits 2. Free with class_names_free. */
char **session_class_names(const options *o, int classes, char *const *model_names);
void session_free_data(session_data *d);

/* Opens --device (index or host). An index out of range lists the devices and exits 2; no
 * OpenCL platform at all says how to install one and exits 1. */
backend *session_open_backend(const options *o);

/* `cltrain --list-devices`: returns the exit status. */
int session_list_devices(void);

#endif
