// AddressSanitizer defaults for the libFuzzer binaries (an ASAN_OPTIONS
// variable still overrides them). Each input of the store fuzzers allocates
// some 10^4 blocks; with ASan's defaults most of their time went to its
// bookkeeping rather than to the code under test:
// - quarantine_size_mb=16 (default 256): freed blocks wait in the quarantine
//   before reuse, and a large one makes every input touch fresh pages (page
//   faults, zeroing). 16 MiB still holds the blocks freed by several inputs,
//   so a use after free within an input is still caught.
// - malloc_context_size=0 (default 30): no stack unwound and stored at every
//   malloc and free (a tenth to a fifth of the store fuzzers' time). It changes
//   what a report shows, not what is caught: the faulting access keeps its
//   stack, the block's allocation and free sites have none.
//   scripts/fuzz-ci.sh and scripts/fuzz-campaign.sh replay each crashing input
//   with ASAN_OPTIONS=malloc_context_size=30 for the full report.
extern "C" const char* __asan_default_options() {
  return "quarantine_size_mb=16:malloc_context_size=0";
}
