#pragma once
// Helpers for tests that run the built binary as a user would: a shell command's exit code, and
// a file's whole contents (captured stdout/stderr, logs, JSON results).
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

namespace pc::test {

inline int exit_code_of(const std::string& shell_command) {
  const int status = std::system(shell_command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace pc::test
