/* fuzz_csv.c: libFuzzer target for the Kaggle CSV reader, dataset_load_csv.
 * The input format and the checks are in fuzz.h; `make fuzz` builds and runs it with
 * the seeds of tests/fuzz/corpus_csv/. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_csv_one(data, size);
}
