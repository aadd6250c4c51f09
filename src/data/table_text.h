#pragma once
// Text helpers shared by the readers of caption tables (`data pack`, the retrieval pair loader), so
// a table that packs also evaluates: the same CSV/TSV dialect, trimming and extension rules.
#include <cstdint>
#include <filesystem>
#include <istream>
#include <string>
#include <vector>

namespace pc::data_internal {

// One record of RFC 4180 CSV (quoting = true) or plain TSV (no quoting: a field cannot hold the
// separator or a newline). CRLF and LF line ends. False at the end of the input. `line` counts
// the input lines read (for messages); UserError naming `name` for an unclosed quote.
bool read_table_record(std::istream& in, char sep, bool quoting, std::vector<std::string>& fields, int64_t& line,
                       const std::string& name);

std::string trim(const std::string& s);                        // blanks, tabs and line ends at both ends
std::string lower_ext(const std::filesystem::path& p);         // "JPG" -> "jpg"; "" without an extension

}  // namespace pc::data_internal
