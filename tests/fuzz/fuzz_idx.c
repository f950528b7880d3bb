/* fuzz_idx.c: libFuzzer target for the IDX reader, dataset_load_idx (raw and gzip).
 * The input format and the checks are in fuzz.h; `make fuzz` builds and runs it with
 * the seeds of tests/fuzz/corpus_idx/. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_idx_one(data, size);
}
