#pragma once
// Helpers shared by the text module's translation units (not part of its public interface).
#include <cstdint>
#include <string>

namespace pc::text {

// Windows-1252 as ftfy's "sloppy" codec reads it: the five undefined bytes (0x81 0x8D 0x8F 0x90
// 0x9D) stand for the C1 control of the same number; every other byte is its cp1252 character.
char32_t cp1252_char(uint8_t b);

std::u32string html_unescape32(const std::u32string& s);  // Python html.unescape
std::u32string ftfy_unescape_html32(const std::u32string& s);  // ftfy.fixes.unescape_html

}  // namespace pc::text
