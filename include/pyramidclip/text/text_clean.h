#pragma once
// The pieces of CLIP's text pipeline below the tokenizer, exposed for tests and for callers that
// need one step alone. Each mirrors one function of the Python original that CLIP runs:
//   fix_text        ftfy.fix_text with its defaults, restricted to what matters for captions
//   html_unescape   Python's html.unescape (HTML5 entities, numeric references, legacy names)
//   collapse_whitespace  re.sub(r'\s+', ' ', t).strip()
//   lower           str.lower() (full Unicode case mapping, final sigma)
//   pre_tokenize    regex.findall of CLIP's pattern (IGNORECASE) over the cleaned, lowered text
// Strings are UTF-8; invalid UTF-8 decodes to U+FFFD. No ICU types leak into this header.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pc::text {

// ---- UTF-8 ----------------------------------------------------------------------------------
// Decodes UTF-8; each maximal invalid subsequence becomes one U+FFFD (Python's errors="replace").
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(const std::u32string& s);
void utf8_append(std::string& out, char32_t cp);

// ---- character classes of CLIP's regex (the `regex` module's definitions) --------------------
bool is_letter(char32_t cp);      // \p{L}: Lu Ll Lt Lm Lo
bool is_number(char32_t cp);      // \p{N}: Nd Nl No
bool is_whitespace(char32_t cp);  // \s: Unicode White_Space

// ---- clean-up steps --------------------------------------------------------------------------
std::string fix_text(const std::string& text);      // ftfy subset (see text_clean.cpp)
std::string html_unescape(const std::string& text);  // Python html.unescape
std::string collapse_whitespace(const std::string& text);
std::string lower(const std::string& text);

// CLIP's pattern  <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (IGNORECASE) applied to already cleaned and lower-cased text; returns the matches in order.
std::vector<std::string> pre_tokenize(const std::string& text);

// clean_text + lower + pre_tokenize: the words CLIP's BPE sees (before byte encoding).
std::vector<std::string> words_of(const std::string& text);

// ---- byte-level alphabet ---------------------------------------------------------------------
// CLIP's bytes_to_unicode(): the printable character (UTF-8) standing for byte b.
const std::string& byte_to_unicode(uint8_t b);
// Position of byte b in bytes_to_unicode()'s order, i.e. its token id (b's "</w>" form is +256).
int byte_rank(uint8_t b);

// ---- generated tables (html_entities.cpp) ----------------------------------------------------
struct HtmlEntity {
  const char* name;   // without the leading '&'
  const char* value;  // UTF-8
};
extern const HtmlEntity kHtml5Entities[];  // sorted by name (strcmp)
extern const size_t kHtml5EntityCount;
extern const HtmlEntity kFtfyUpperEntities[];  // sorted by name (strcmp)
extern const size_t kFtfyUpperEntityCount;

}  // namespace pc::text
