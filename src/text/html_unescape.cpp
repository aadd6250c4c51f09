// Python's html.unescape (which CLIP applies twice) and ftfy's stricter unescape_html step.
#include <algorithm>
#include <cstring>

#include "pyramidclip/text/text_clean.h"
#include "text_internal.h"

namespace pc::text {
namespace {

const char* find_entity(const HtmlEntity* table, size_t count, const std::string& name) {
  const HtmlEntity* end = table + count;
  const HtmlEntity* it = std::lower_bound(
      table, end, name, [](const HtmlEntity& e, const std::string& key) { return std::strcmp(e.name, key.c_str()) < 0; });
  if (it != end && name == it->name) return it->value;
  return nullptr;
}

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_hex(char32_t c) { return is_ascii_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
bool is_ascii_alnum(char32_t c) { return is_ascii_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }

// html._invalid_codepoints: references to these decode to nothing.
bool invalid_codepoint(uint32_t cp) {
  return (cp >= 0x1 && cp <= 0x8) || cp == 0xB || (cp >= 0xE && cp <= 0x1F) || (cp >= 0x7F && cp <= 0x9F) ||
         (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
}

// html._replace_charref for a numeric reference with value `num` (saturated above 0x10FFFF).
std::u32string numeric_charref(uint32_t num) {
  // html._invalid_charrefs: NUL, CR, and 0x80-0x9F read as Windows-1252.
  if (num == 0x00) return U"\uFFFD";
  if (num == 0x0D) return U"\r";
  if (num >= 0x80 && num <= 0x9F) return std::u32string(1, cp1252_char(static_cast<uint8_t>(num)));
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return U"\uFFFD";
  if (invalid_codepoint(num)) return U"";
  return std::u32string(1, static_cast<char32_t>(num));
}

uint32_t parse_number(const std::u32string& s, size_t begin, size_t end, int base) {
  uint64_t v = 0;
  for (size_t i = begin; i < end; ++i) {
    const char32_t c = s[i];
    const uint32_t d = is_ascii_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
    v = v * static_cast<uint64_t>(base) + d;
    if (v > 0x110000) v = 0x110000;  // anything past the last code point behaves the same
  }
  return static_cast<uint32_t>(v);
}

std::string ascii_name(const std::u32string& s, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) {
    if (s[i] >= 0x80) return std::string();  // no entity name has non-ASCII characters
    out.push_back(static_cast<char>(s[i]));
  }
  return out;
}

}  // namespace

std::u32string html_unescape32(const std::u32string& s) {
  if (s.find(U'&') == std::u32string::npos) return s;
  std::u32string out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    // _charref = &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
    size_t j = i + 1;
    if (j < n && s[j] == U'#') {
      size_t k = j + 1;
      int base = 10;
      if (k < n && is_ascii_digit(s[k])) {
        while (k < n && is_ascii_digit(s[k])) ++k;
      } else if (k + 1 < n && (s[k] == U'x' || s[k] == U'X') && is_ascii_hex(s[k + 1])) {
        base = 16;
        ++k;
        while (k < n && is_ascii_hex(s[k])) ++k;
      } else {
        out.push_back(s[i++]);  // "&#" without digits: not a reference
        continue;
      }
      const size_t digits_begin = base == 16 ? j + 2 : j + 1;
      out += numeric_charref(parse_number(s, digits_begin, k, base));
      if (k < n && s[k] == U';') ++k;
      i = k;
      continue;
    }
    size_t k = j;
    auto name_char = [](char32_t c) { return c != U'\t' && c != U'\n' && c != U'\f' && c != U' ' && c != U'<' && c != U'&' && c != U'#' && c != U';'; };
    while (k < n && k - j < 32 && name_char(s[k])) ++k;
    if (k == j) {
      out.push_back(s[i++]);
      continue;
    }
    if (k < n && s[k] == U';') ++k;
    // group(1) is s[j, k): exact name first, then the longest prefix of length >= 2.
    const size_t len = k - j;
    const char* value = nullptr;
    size_t used = 0;
    for (size_t x = len; x >= 2 && !value; --x) {
      const std::string name = ascii_name(s, j, j + x);
      if (!name.empty()) value = find_entity(kHtml5Entities, kHtml5EntityCount, name);
      if (value) used = x;
    }
    if (value) {
      out += utf8_decode(value);
      out.append(s, j + used, len - used);
    } else {
      out.append(s, i, k - i);
    }
    i = k;
  }
  return out;
}

std::string html_unescape(const std::string& text) {
  if (text.find('&') == std::string::npos) return text;
  return utf8_encode(html_unescape32(utf8_decode(text)));
}

std::u32string ftfy_unescape_html32(const std::u32string& s) {
  if (s.find(U'&') == std::u32string::npos) return s;
  std::u32string out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    // HTML_ENTITY_RE = &#?[0-9A-Za-z]{1,24};
    auto match_from = [&](size_t p) -> size_t {  // returns end (after ';') or 0
      size_t q = p;
      while (q < n && q - p < 24 && is_ascii_alnum(s[q])) ++q;
      if (q > p && q < n && s[q] == U';') return q + 1;
      return 0;
    };
    size_t end = 0;
    bool numeric = false;
    if (i + 1 < n && s[i + 1] == U'#') {
      end = match_from(i + 2);
      numeric = end != 0;
    }
    if (!end) end = match_from(i + 1);
    if (!end) {
      out.push_back(s[i++]);
      continue;
    }
    const std::u32string whole = s.substr(i, end - i);
    if (!numeric) {
      const std::string name = ascii_name(s, i + 1, end);
      const char* value = find_entity(kHtml5Entities, kHtml5EntityCount, name);
      if (!value) value = find_entity(kFtfyUpperEntities, kFtfyUpperEntityCount, name);
      if (value)
        out += utf8_decode(value);
      else
        out += whole;
    } else {
      const std::u32string un = html_unescape32(whole);
      out += un.find(U';') == std::u32string::npos ? un : whole;
    }
    i = end;
  }
  return out;
}

}  // namespace pc::text
