/* eval_cmd.c: placeholder until the eval command lands. */
#include "commands.h"
#include "util.h"

int command_eval(const options *o)
{
    (void)o;
    die(EXIT_USAGE, "eval is not available yet");
}
