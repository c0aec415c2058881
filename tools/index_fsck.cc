// index-fsck: checks stores of this library and of the OCaml `index` library.
// Usage and exit codes: `index-fsck --help` (text in tools/fsck_cli.cc).
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "io/env.h"
#include "tools/fsck_cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return kvindex::fsck::RunCli(kvindex::Env::Posix(), args, std::cout,
                               std::cerr, isatty(STDERR_FILENO) == 1);
}
