#pragma once
// CLIP byte-level BPE (the `bpe_simple_vocab_16e6.txt.gz` format), matching OpenAI CLIP's
// SimpleTokenizer: ftfy-style clean-up, HTML unescape, whitespace collapse, lower-case,
// CLIP's pre-tokenization regex, `</w>` word ends, SOT/EOT, fixed context with EOT kept last.
// No torch here: ids are plain vectors.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pc {

class Tokenizer {
 public:
  // Loads a merges file (gzip or plain text; first line is a header as in CLIP's file).
  // Throws UserError naming the path when it is missing or malformed.
  static Tokenizer from_file(const std::string& path);

  // Trains `num_merges` BPE merges on `texts` (same pre-tokenization and byte encoding as
  // CLIP) so the demo needs no download; `save` writes it in the same gz format.
  static Tokenizer train(const std::vector<std::string>& texts, int num_merges);
  void save(const std::string& path) const;

  // CLIP keeps at most this many merges (49152 - 256 - 2), so the vocabulary is at most 49408.
  static constexpr int kMaxMerges = 48894;
  using Merge = std::pair<std::string, std::string>;  // byte-alphabet symbols, e.g. {"ca", "t</w>"}
  // Builds a tokenizer from an explicit merge list (each part a byte symbol, with or without
  // "</w>", or the result of an earlier merge; at most kMaxMerges). Throws UserError otherwise.
  static Tokenizer from_merges(const std::vector<Merge>& merges);
  const std::vector<Merge>& merges() const;
  // The vocabulary string of an id ("cat</w>", "<|endoftext|>"); throws UserError when out of range.
  const std::string& token(int32_t id) const;

  // Token ids of one text without SOT/EOT.
  std::vector<int32_t> encode(const std::string& text) const;
  // SOT + ids + EOT, truncated so EOT stays last, zero-padded to context_length.
  std::vector<int32_t> tokenize(const std::string& text, int context_length = 77) const;
  std::string decode(const std::vector<int32_t>& ids) const;

  int vocab_size() const;  // 512 byte tokens + merges + 2 specials (49408 for CLIP's file)
  int sot() const;         // "<|startoftext|>"
  int eot() const;         // "<|endoftext|>"

  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

 private:
  Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// CLIP's text clean-up: ftfy.fix_text defaults that matter for captions (NFC, uncurled quotes,
// full-width forms, Latin ligatures, UTF-8 mis-decoded as Windows-1252), HTML unescape twice,
// whitespace collapse and strip. Exposed for tests.
std::string clean_text(const std::string& text);

}  // namespace pc
