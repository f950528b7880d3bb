/* commands.h: the subcommands main() dispatches to. Each returns the exit status. */
#ifndef CLTRAIN_COMMANDS_H
#define CLTRAIN_COMMANDS_H

#include "options.h"

int command_train(const options *o);      /* src/train_cmd.c */
int command_predict(const options *o);    /* src/predict_cmd.c */
int command_eval(const options *o);       /* src/eval_cmd.c */
int command_plot(const options *o);       /* src/plot.c: `cltrain plot LOG.csv DIR` */
int command_export(const options *o);     /* src/export_cmd.c: `cltrain export --load M --onnx F` */

#endif
