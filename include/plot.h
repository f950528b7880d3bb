/* plot.h: charts of a training log (the CSV of --log), drawn by gnuplot. */
#ifndef CLTRAIN_PLOT_H
#define CLTRAIN_PLOT_H

#include <stddef.h>

/* Reads csv_path (header epoch,loss,mse,train_acc,test_acc[,val_acc],seconds[,lr]; columns
 * are found by name) and writes dir/accuracy.png (train, test and, when logged, validation
 * accuracy per epoch) and dir/mse.png (MSE per epoch), 900 x 600, each titled with `title`
 * (e.g. "784-10-10 relu, α = 0.1"). dir is created if missing; each PNG replaces the old one
 * only when gnuplot succeeded. Returns 0, or the exit status with a one-line message in err:
 * EXIT_USAGE (2) for a missing or malformed log, EXIT_RUNTIME (1) when gnuplot is not
 * installed or fails, or dir cannot be written. */
int plot_log(const char *csv_path, const char *dir, const char *title, char *err, size_t errlen);

#endif
