#pragma once
// Error types with a user-facing contract: the CLI turns a UserError into one line on
// stderr and exit code 2 (bad option, value, path, file or data); anything else is a bug.
#include <stdexcept>
#include <string>

namespace pc {

// Bad input from the user: the message names the problem and the fix.
struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws UserError(msg) when cond is false.
inline void require(bool cond, const std::string& msg) {
  if (!cond) throw UserError(msg);
}

constexpr int kExitUsage = 2;

}  // namespace pc
