// CLIP's caption clean-up: basic_clean (ftfy.fix_text, html.unescape twice, strip), then
// whitespace_clean, then lower-case. ftfy is reproduced for the fixes its defaults apply to
// captions; see fix_segment for the exact list and the deliberate omissions.
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>

#include <array>
#include <stdexcept>

#include "pyramidclip/text/text_clean.h"
#include "pyramidclip/text/tokenizer.h"
#include "text_internal.h"

namespace pc::text {
namespace {

// Windows-1252 0x80-0x9F; 0 marks the five undefined bytes.
constexpr char16_t kCp1252High[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

// The byte a character stands for in ftfy's sloppy-windows-1252, or -1 when it has none.
int sloppy_cp1252_byte(char32_t c) {
  if (c < 0x80 || (c >= 0xA0 && c <= 0xFF)) return c == 0x1A ? -1 : static_cast<int>(c);  // 0x1A is U+FFFD there
  for (int i = 0; i < 32; ++i) {
    const char32_t mapped = kCp1252High[i] ? kCp1252High[i] : static_cast<char32_t>(0x80 + i);
    if (mapped == c) return 0x80 + i;
  }
  return -1;
}

const icu::Normalizer2& nfc() {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status) || !n) throw std::runtime_error("ICU NFC normalizer unavailable");
  return *n;
}

// ftfy's WIDTH_MAP: U+3000 -> ' ', and U+FF01..U+FFEF -> NFKC(c) where that differs.
struct WidthMap {
  std::array<std::u32string, 0xFFF0 - 0xFF01> to;
  WidthMap() {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* nfkc = icu::Normalizer2::getNFKCInstance(status);
    if (U_FAILURE(status) || !nfkc) throw std::runtime_error("ICU NFKC normalizer unavailable");
    for (char32_t c = 0xFF01; c < 0xFFF0; ++c) {
      const icu::UnicodeString src(static_cast<UChar32>(c));
      status = U_ZERO_ERROR;
      const icu::UnicodeString dst = nfkc->normalize(src, status);
      if (U_FAILURE(status) || dst == src) continue;
      std::u32string out(static_cast<size_t>(dst.countChar32()), U'\0');
      status = U_ZERO_ERROR;
      dst.toUTF32(reinterpret_cast<UChar32*>(out.data()), static_cast<int32_t>(out.size()), status);
      to[c - 0xFF01] = out;
    }
  }
};

const WidthMap& width_map() {
  static const WidthMap m;
  return m;
}

const char32_t* ligature(char32_t c) {
  switch (c) {
    case 0x0132: return U"IJ";
    case 0x0133: return U"ij";
    case 0x0149: return U"\u02BCn";
    case 0x01F1: return U"DZ";
    case 0x01F2: return U"Dz";
    case 0x01F3: return U"dz";
    case 0x01C4: return U"D\u017D";
    case 0x01C5: return U"D\u017E";
    case 0x01C6: return U"d\u017E";
    case 0x01C7: return U"LJ";
    case 0x01C8: return U"Lj";
    case 0x01C9: return U"lj";
    case 0x01CA: return U"NJ";
    case 0x01CB: return U"Nj";
    case 0x01CC: return U"nj";
    case 0xFB00: return U"ff";
    case 0xFB01: return U"fi";
    case 0xFB02: return U"fl";
    case 0xFB03: return U"ffi";
    case 0xFB04: return U"ffl";
    case 0xFB05: return U"\u017Ft";
    case 0xFB06: return U"st";
    default: return nullptr;
  }
}

// ftfy CONTROL_CHARS (removed): C0 controls except \t \n \f \r, DEL, deprecated format
// characters, the BOM / zero-width no-break space, interlinear annotation characters.
bool removed_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

bool is_ascii(const std::u32string& s) {
  for (char32_t c : s)
    if (c >= 0x80) return false;
  return true;
}

// Mojibake: text that was UTF-8, decoded as Latin-1 or Windows-1252. Repaired only when the whole
// string encodes back to bytes that are valid UTF-8 (ftfy additionally gates this on its
// "badness" heuristic and repairs some partial cases; those are not reproduced).
std::u32string fix_encoding(std::u32string text) {
  for (;;) {
    if (is_ascii(text)) return text;
    std::string bytes;
    bytes.reserve(text.size());
    bool latin1 = true;
    for (char32_t c : text)
      if (c > 0xFF) latin1 = false;
    if (latin1) {
      for (char32_t c : text) bytes.push_back(static_cast<char>(c));
    } else {
      for (char32_t c : text) {
        const int b = sloppy_cp1252_byte(c);
        if (b < 0) return text;
        bytes.push_back(static_cast<char>(b));
      }
    }
    const std::u32string fixed = utf8_decode(bytes);
    if (fixed.find(U'\uFFFD') != std::u32string::npos) return text;  // not valid UTF-8
    if (fixed == text) return text;
    text = fixed;
  }
}

// ANSI terminal escapes: \033\[((?:\d|;)*)([a-zA-Z])  (\d is any decimal digit, as in Python re)
std::u32string remove_terminal_escapes(const std::u32string& s) {
  if (s.find(U'\033') == std::u32string::npos) return s;
  std::u32string out;
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] == U'\033' && i + 1 < n && s[i + 1] == U'[') {
      size_t j = i + 2;
      while (j < n && (s[j] == U';' || u_isdigit(static_cast<UChar32>(s[j])))) ++j;
      if (j < n && s[j] < 0x80 && (s[j] | 0x20) >= 'a' && (s[j] | 0x20) <= 'z') {
        i = j + 1;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

std::u32string normalize_nfc(const std::u32string& s) {
  if (is_ascii(s)) return s;
  const icu::UnicodeString src =
      icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(s.data()), static_cast<int32_t>(s.size()));
  UErrorCode status = U_ZERO_ERROR;
  if (nfc().isNormalized(src, status) && U_SUCCESS(status)) return s;
  status = U_ZERO_ERROR;
  const icu::UnicodeString dst = nfc().normalize(src, status);
  if (U_FAILURE(status)) return s;
  std::u32string out(static_cast<size_t>(dst.countChar32()), U'\0');
  status = U_ZERO_ERROR;
  dst.toUTF32(reinterpret_cast<UChar32*>(out.data()), static_cast<int32_t>(out.size()), status);
  return out;
}

// One pass of ftfy.fix_and_explain's fixers, in its order: unescape_html (only when the text
// has no '<'), fix_encoding, fix_c1_controls, fix_latin_ligatures, fix_character_width,
// uncurl_quotes, fix_line_breaks, (fix_surrogates: nothing to do on UTF-32),
// remove_terminal_escapes, remove_control_chars, NFC.
std::u32string fix_pass(const std::u32string& in, bool unescape) {
  std::u32string text = unescape ? ftfy_unescape_html32(in) : in;
  text = fix_encoding(std::move(text));
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char32_t c = text[i];
    if (c >= 0x80 && c <= 0x9F) c = cp1252_char(static_cast<uint8_t>(c));  // fix_c1_controls
    if (const char32_t* lig = ligature(c)) {
      out += lig;
      continue;
    }
    if (c == 0x3000) {
      c = U' ';
    } else if (c >= 0xFF01 && c < 0xFFF0 && !width_map().to[c - 0xFF01].empty()) {
      out += width_map().to[c - 0xFF01];
      continue;
    }
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';
    if (c >= 0x201C && c <= 0x201F) c = U'"';
    out.push_back(c);
  }
  // fix_line_breaks
  std::u32string lines;
  lines.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    const char32_t c = out[i];
    if (c == U'\r' && i + 1 < out.size() && out[i + 1] == U'\n') continue;  // \r\n -> \n
    lines.push_back(c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x85 ? U'\n' : c);
  }
  text = remove_terminal_escapes(lines);
  out.clear();
  for (char32_t c : text)
    if (!removed_control(c)) out.push_back(c);
  return normalize_nfc(out);
}

bool py_isspace(char32_t c) { return is_whitespace(c) || (c >= 0x1C && c <= 0x1F); }

std::u32string strip(const std::u32string& s) {
  size_t b = 0, e = s.size();
  while (b < e && py_isspace(s[b])) ++b;
  while (e > b && py_isspace(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// re.sub(r'\s+', ' ', s).strip()
std::u32string collapse32(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  bool in_space = false;
  for (char32_t c : s) {
    if (is_whitespace(c)) {
      if (!in_space) out.push_back(U' ');
      in_space = true;
    } else {
      out.push_back(c);
      in_space = false;
    }
  }
  return strip(out);
}

std::u32string fix_text32(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  bool unescape = true;  // ftfy's unescape_html="auto": off from the first line containing '<'
  size_t pos = 0;
  while (pos < text.size()) {
    size_t brk = text.find(U'\n', pos);
    brk = brk == std::u32string::npos ? text.size() : brk + 1;
    std::u32string seg = text.substr(pos, brk - pos);
    if (seg.find(U'<') != std::u32string::npos) unescape = false;
    for (;;) {  // fixers until nothing changes
      std::u32string fixed = fix_pass(seg, unescape);
      if (fixed == seg) break;
      seg = std::move(fixed);
    }
    out += seg;
    pos = brk;
  }
  return out;
}

// Plain printable ASCII (plus \t \n \f \r) without '&': every ftfy fixer and html.unescape is
// the identity there, so clean-up is only the whitespace collapse.
bool needs_only_whitespace_clean(const std::string& s) {
  for (unsigned char c : s) {
    if (c >= 0x80 || c == '&' || c == 0x7F) return false;
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\f' && c != '\r') return false;
  }
  return true;
}

}  // namespace

char32_t cp1252_char(uint8_t b) {
  if (b >= 0x80 && b <= 0x9F && kCp1252High[b - 0x80]) return kCp1252High[b - 0x80];
  return b;
}

std::string fix_text(const std::string& text) { return utf8_encode(fix_text32(utf8_decode(text))); }

std::string collapse_whitespace(const std::string& text) { return utf8_encode(collapse32(utf8_decode(text))); }

std::string lower(const std::string& text) {
  bool ascii = true;
  for (unsigned char c : text) ascii = ascii && c < 0x80;
  if (ascii) {
    std::string out = text;
    for (char& c : out)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return out;
  }
  const icu::UnicodeString src = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  icu::UnicodeString dst = src;
  dst.toLower(icu::Locale::getRoot());  // full mappings with Final_Sigma, like str.lower()
  std::string out;
  dst.toUTF8String(out);
  return out;
}

}  // namespace pc::text

namespace pc {

std::string clean_text(const std::string& text) {
  if (text::needs_only_whitespace_clean(text)) {
    std::string out;
    out.reserve(text.size());
    bool in_space = false;
    for (char c : text) {
      if (c == ' ' || (c >= '\t' && c <= '\r')) {
        in_space = true;
      } else {
        if (in_space && !out.empty()) out.push_back(' ');
        in_space = false;
        out.push_back(c);
      }
    }
    return out;
  }
  std::u32string t = text::fix_text32(text::utf8_decode(text));
  t = text::html_unescape32(text::html_unescape32(t));
  return text::utf8_encode(text::collapse32(text::strip(t)));
}

}  // namespace pc
