/* commands.h: the subcommands main() dispatches to. Each returns the exit status. */
#ifndef CLTRAIN_COMMANDS_H
#define CLTRAIN_COMMANDS_H

#include "options.h"

int command_train(const options *o);

#endif
