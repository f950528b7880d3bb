/* plot.c: placeholder until the plot command lands. */
#include "commands.h"
#include "util.h"

int command_plot(const options *o)
{
    (void)o;
    die(EXIT_USAGE, "plot is not available yet");
}
