// CLIP's pre-tokenization regex, matched by hand over code points:
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// with IGNORECASE (which only matters for the literal alternatives: "'ſ" matches 's, as in the
// `regex` module, whose case-insensitive literals compare simple case foldings).
#include <unicode/uchar.h>

#include "pyramidclip/text/text_clean.h"
#include "pyramidclip/text/tokenizer.h"

namespace pc::text {
namespace {

const std::u32string kLiterals[] = {U"<|startoftext|>", U"<|endoftext|>", U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};

char32_t fold(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  return static_cast<char32_t>(u_foldCase(static_cast<UChar32>(c), U_FOLD_CASE_DEFAULT));
}

size_t match_literal(const std::u32string& s, size_t i) {
  for (const std::u32string& lit : kLiterals) {
    if (s.size() - i < lit.size()) continue;
    bool ok = true;
    for (size_t k = 0; k < lit.size() && ok; ++k) ok = fold(s[i + k]) == lit[k];
    if (ok) return lit.size();
  }
  return 0;
}

}  // namespace

std::vector<std::string> pre_tokenize(const std::string& text) {
  std::vector<std::string> out;
  const std::u32string s = utf8_decode(text);
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    size_t len = (s[i] == U'<' || s[i] == U'\'') ? match_literal(s, i) : 0;
    if (!len) {
      const char32_t c = s[i];
      if (is_letter(c)) {
        size_t j = i + 1;
        while (j < n && is_letter(s[j])) ++j;
        len = j - i;
      } else if (is_number(c)) {
        len = 1;
      } else if (!is_whitespace(c)) {
        size_t j = i + 1;
        while (j < n && !is_whitespace(s[j]) && !is_letter(s[j]) && !is_number(s[j])) ++j;
        len = j - i;
      }
    }
    if (!len) {  // whitespace separates matches
      ++i;
      continue;
    }
    std::string tok;
    for (size_t k = i; k < i + len; ++k) utf8_append(tok, s[k]);
    out.push_back(std::move(tok));
    i += len;
  }
  return out;
}

std::vector<std::string> words_of(const std::string& text) { return pre_tokenize(lower(clean_text(text))); }

}  // namespace pc::text
