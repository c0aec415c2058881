// AddressSanitizer defaults for the libFuzzer binaries (an ASAN_OPTIONS
// variable still overrides them). Each input of the store fuzzers allocates
// some 10^4 blocks; with ASan's defaults most of their time went to its
// bookkeeping rather than to the code under test:
// - quarantine_size_mb=4 (default 256): freed blocks wait in the quarantine
//   before reuse, and every block handed out again has left the cache by then:
//   its header and shadow are loaded from memory on each malloc, the larger the
//   quarantine the more often (256 MiB also faults in and zeroes fresh pages).
//   An input of api_fuzzer frees about 0.7 MiB (1465 corpus inputs: 1063 MiB
//   in 15.6 million frees), so 4 MiB still holds the blocks freed by the last
//   few inputs and a use after free within an input is still caught. Against
//   16 MiB it replays api_fuzzer's corpus 9% faster (README, fuzzing).
// - malloc_context_size=0 (default 30): no stack unwound and stored at every
//   malloc and free (a tenth to a fifth of the store fuzzers' time). It changes
//   what a report shows, not what is caught: the faulting access keeps its
//   stack, the block's allocation and free sites have none.
//   scripts/fuzz-ci.sh and scripts/fuzz-campaign.sh replay each crashing input
//   with ASAN_OPTIONS=malloc_context_size=30 for the full report.
extern "C" const char* __asan_default_options() {
  return "quarantine_size_mb=4:malloc_context_size=0";
}
