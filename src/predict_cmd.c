/* predict_cmd.c: placeholder until the predict command lands. */
#include "commands.h"
#include "util.h"

int command_predict(const options *o)
{
    (void)o;
    die(EXIT_USAGE, "predict is not available yet");
}
