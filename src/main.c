/* main.c: the command line: subcommands, --help, --version, --list-devices; nothing else. */
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "dist.h"
#include "options.h"
#include "session.h"
#include "util.h"

#ifndef CLTRAIN_VERSION
#define CLTRAIN_VERSION "0.1.0"
#endif

static int run(const options *op)
{
    const options o = *op;
    if (o.help) {
        options_print_help(stdout);
        return EXIT_OK;
    }
    if (o.version) {
        printf("cltrain %s (%s)\n", CLTRAIN_VERSION, dist_describe());
        return EXIT_OK;
    }
    /* Under mpirun only training is distributed; anything else runs once, on rank 0. */
    if (dist_rank() != 0 && (o.list_devices || o.command != CMD_TRAIN)) return EXIT_OK;
    if (o.list_devices) return session_list_devices();
    switch (o.command) {
    case CMD_TRAIN: return command_train(&o);
    case CMD_PREDICT: return command_predict(&o);
    case CMD_EVAL: return command_eval(&o);
    case CMD_PLOT: return command_plot(&o);
    case CMD_EXPORT: return command_export(&o);
    }
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    dist_init(&argc, &argv);
    options o;
    options_defaults(&o);
    if (options_parse(&o, argc, argv) != 0) {
        options_free(&o);
        return EXIT_USAGE;
    }
    int status = run(&o);
    options_free(&o);
    /* A failed rank leaves without MPI_Finalize, so that mpirun ends the whole job. */
    if (status == EXIT_OK) dist_finalize();
    return status;
}
