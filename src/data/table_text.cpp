#include "table_text.h"

#include <algorithm>
#include <cctype>

#include "pyramidclip/util/errors.h"

namespace pc::data_internal {

bool read_table_record(std::istream& in, char sep, bool quoting, std::vector<std::string>& fields, int64_t& line,
                 const std::string& name) {
  fields.clear();
  std::string field;
  bool any = false, in_quotes = false, quoted = false;
  const int64_t start_line = line;
  for (int c = in.get(); c != std::char_traits<char>::eof(); c = in.get()) {
    any = true;
    const char ch = static_cast<char>(c);
    if (in_quotes) {
      if (ch == '"') {
        if (in.peek() == '"') {
          in.get();
          field += '"';
        } else {
          in_quotes = false;
        }
      } else {
        if (ch == '\n') ++line;
        field += ch;
      }
      continue;
    }
    if (quoting && ch == '"' && field.empty() && !quoted) {
      in_quotes = quoted = true;
      continue;
    }
    if (ch == sep) {
      fields.push_back(std::move(field));
      field.clear();
      quoted = false;
      continue;
    }
    if (ch == '\r' && (in.peek() == '\n' || in.peek() == std::char_traits<char>::eof())) continue;
    if (ch == '\n') {
      ++line;
      fields.push_back(std::move(field));
      return true;
    }
    field += ch;
  }
  if (in_quotes)
    throw UserError(name + ": the quoted field opened on line " + std::to_string(start_line) +
                    " is never closed: fix the quoting (a \" inside a field is written \"\")");
  if (!any) return false;
  fields.push_back(std::move(field));
  return true;
}

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  const auto b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

std::string lower_ext(const std::filesystem::path& p) {
  std::string e = p.extension().string();
  if (!e.empty()) e.erase(0, 1);
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e;
}

}  // namespace pc::data_internal
