/* fuzz_model.c: libFuzzer target for the model loader, model_load.
 * The input format and the checks are in fuzz.h; `make fuzz` builds and runs it with
 * the seeds of tests/fuzz/corpus_model/. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_model_one(data, size);
}
