#include "pyramidclip/util/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <filesystem>
#include <memory>
#include <vector>

namespace pc {

void init_logging(int rank, const std::string& log_dir, spdlog::level::level_enum console_level) {
  std::vector<spdlog::sink_ptr> sinks;
  auto console = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  console->set_level(rank == 0 ? console_level : spdlog::level::warn);
  console->set_pattern(rank == 0 ? "[%H:%M:%S] %v" : "[rank " + std::to_string(rank) + "] %^%l%$: %v");
  sinks.push_back(console);
  if (!log_dir.empty()) {
    std::filesystem::create_directories(log_dir);
    // append: logs of a resumed run continue the same file
    auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(
        log_dir + "/rank-" + std::to_string(rank) + ".log", /*truncate=*/false);
    file->set_level(spdlog::level::debug);
    file->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
    sinks.push_back(file);
  }
  auto logger = std::make_shared<spdlog::logger>("pc", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::debug);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace pc
