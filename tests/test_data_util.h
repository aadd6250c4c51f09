#pragma once
// Helpers shared by the data tests: a temporary directory and a toy tokenizer.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace pc::test {

// A fresh directory under the system temp dir, removed when the object dies.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / ("pc_test_" + tag + "_" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string str(const std::string& rel = "") const { return rel.empty() ? path.string() : (path / rel).string(); }
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

// Word-hash "tokenizer": SOT, one id per word, EOT, zero padding to 77 (the callback contract).
inline std::vector<int32_t> toy_tokenize(const std::string& text) {
  std::vector<int32_t> ids = {49406};
  uint32_t h = 2166136261u;
  bool in_word = false;
  for (char c : text + " ") {
    if (c == ' ' || c == ',' || c == '.') {
      if (in_word && ids.size() < 76) ids.push_back(static_cast<int32_t>(h % 40000) + 256);
      h = 2166136261u;
      in_word = false;
    } else {
      h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
      in_word = true;
    }
  }
  ids.push_back(49407);
  ids.resize(77, 0);
  return ids;
}

}  // namespace pc::test
