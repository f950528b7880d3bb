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

void session_load_data(const options *o, session_data *d);
void session_free_data(session_data *d);

/* Opens --device (index or host). An index out of range lists the devices and exits 2; no
 * OpenCL platform at all says how to install one and exits 1. */
backend *session_open_backend(const options *o);

/* `cltrain --list-devices`: returns the exit status. */
int session_list_devices(void);

#endif
