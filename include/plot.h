/* plot.h: charts of a training log (the CSV of --log), drawn by gnuplot. */
#ifndef CLTRAIN_PLOT_H
#define CLTRAIN_PLOT_H

#include <stddef.h>
#include <stdio.h>

/* Reads csv_path (header epoch,loss,mse,train_acc,test_acc[,val_acc],seconds[,lr]; columns
 * are found by name) and writes dir/accuracy.png (train, test and, when logged, validation
 * accuracy per epoch) and dir/mse.png (MSE per epoch), 900 x 600, each titled with `title`
 * (e.g. "784-10-10 relu, α = 0.1"). dir is created if missing; each PNG replaces the old one
 * only when gnuplot succeeded. Returns 0, or the exit status with a one-line message in err:
 * EXIT_USAGE (2) for a missing or malformed log, EXIT_RUNTIME (1) when gnuplot is not
 * installed or fails, or dir cannot be written. */
int plot_log(const char *csv_path, const char *dir, const char *title, char *err, size_t errlen);

/* A figure list: a tab-separated file whose first line starts "figure<TAB>" (a header), then
 * one row per figure, '#' lines and blank lines ignored:
 *     NUMBER <TAB> accuracy|mse <TAB> AXES <TAB> CAPTION <TAB> LOG <TAB> LABEL [<TAB> LOG <TAB> LABEL]...
 *     NUMBER <TAB> image <TAB> - <TAB> CAPTION <TAB> PNG
 *     title <TAB> the contact sheet's title (optional)
 * Paths are relative to the list's folder. An accuracy or MSE row is drawn as plot_log draws a
 * log (up to 8 logs, one colour each, the label in the legend); charts of one kind with the
 * same AXES share their y range ("-": their own). plot_figures writes dir/figure-NN.png
 * (900 x 600; an image row: the PNG 1:1 under its title, 40 px wider and 90 px higher), titled
 * "Figure NUMBER: CAPTION", and dir/figures.png, the contact sheet: the accuracy and MSE
 * charts in the list's order, two a row, each 600 x 400, under a 60 px title band. Nothing is
 * replaced unless every PNG was drawn. *n_written: the PNGs written. Returns and errors as
 * plot_log (a malformed list or any log it names: EXIT_USAGE with file and line). */
int plot_figures(const char *list_path, const char *dir, int *n_written, char *err, size_t errlen);

/* The gnuplot script plot_figures runs, with the final PNG names, into out (for tests). */
int plot_figures_script(const char *list_path, const char *dir, FILE *out, char *err, size_t errlen);

#endif
