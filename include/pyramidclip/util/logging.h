#pragma once
// Logging per DESIGN §5: rank 0 prints to the console, every rank writes <run>/logs/rank-N.log.
// Plain (uncoloured) sinks: spdlog's colour codes garble mpirun's forwarded output.
#include <spdlog/spdlog.h>
#include <string>

namespace pc {

// Sets the default logger. log_dir may be empty (console only). Rank 0 logs to the
// console at `console_level`; other ranks only to their file (and warnings+ to stderr).
void init_logging(int rank, const std::string& log_dir, spdlog::level::level_enum console_level = spdlog::level::info);

}  // namespace pc
