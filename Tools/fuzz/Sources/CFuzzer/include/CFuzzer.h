#ifndef TESSERA_CFUZZER_H
#define TESSERA_CFUZZER_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt FuzzerInterface.h), linked by -sanitize=fuzzer:
/// runs the fuzzing loop with the given callback, taking libFuzzer's flags from argv.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
