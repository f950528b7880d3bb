/* output_paths.h: the files a run will write, checked against each other before any work. */
#ifndef CLTRAIN_OUTPUT_PATHS_H
#define CLTRAIN_OUTPUT_PATHS_H

#include "options.h"

/* Exits 2 naming both flags when two outputs of the command (--save, --checkpoint, --log,
 * --export-npy, --plot; predict's --out and --grid) name the same file or folder, written
 * differently or through a link as well. */
void output_paths_check(const options *o);

#endif
