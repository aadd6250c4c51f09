// CLIP's SimpleTokenizer: merges file loading, BPE with a cache, encode/tokenize/decode, save.
#include "pyramidclip/text/tokenizer.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cctype>
#include <climits>
#include <mutex>
#include <shared_mutex>

#include "pyramidclip/text/text_clean.h"
#include "pyramidclip/util/errors.h"

namespace pc {
namespace {

constexpr const char* kSot = "<|startoftext|>";
constexpr const char* kEot = "<|endoftext|>";
constexpr size_t kMaxCacheEntries = 1 << 20;  // distinct words kept; cleared when exceeded

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

std::string read_all(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw UserError("tokenizer vocabulary '" + path +
                    "' not found: pass the path of CLIP's bpe_simple_vocab_16e6.txt.gz (or a merges file written by "
                    "Tokenizer::save)");
  if (S_ISDIR(st.st_mode))
    throw UserError("tokenizer vocabulary '" + path + "' is a directory: pass the merges file itself");
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw UserError("cannot open tokenizer vocabulary '" + path + "': check its permissions");
  std::string data;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int err = 0;
      const std::string msg = gzerror(f, &err);
      gzclose(f);
      throw UserError("tokenizer vocabulary '" + path + "' is corrupt (" + msg +
                      "): download bpe_simple_vocab_16e6.txt.gz again");
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  int err = Z_OK;
  const std::string msg = gzerror(f, &err);
  gzclose(f);
  if (err != Z_OK)
    throw UserError("tokenizer vocabulary '" + path + "' is corrupt (" + (err == Z_BUF_ERROR ? std::string("truncated gzip stream") : msg) +
                    "): download bpe_simple_vocab_16e6.txt.gz again");
  return data;
}

}  // namespace

struct Tokenizer::Impl {
  std::vector<Merge> merges;
  std::vector<std::string> vocab;                   // id -> token string
  std::vector<std::string> id_bytes;                // id -> the raw bytes it stands for
  std::unordered_map<std::string, int32_t> encoder;  // token string -> id (the last one, as CLIP's dict)
  struct MergeRule {
    int32_t rank;
    int32_t result;
  };
  std::unordered_map<uint64_t, MergeRule> rules;  // (left id, right id) -> rank and merged id
  int32_t byte_id[256] = {};                      // canonical id of each byte symbol
  int32_t byte_end_id[256] = {};                  // ... and of its "</w>" form
  int32_t sot = 0, eot = 0;

  mutable std::shared_mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;  // word (UTF-8) -> ids

  // Validates `merges` and builds the vocabulary exactly like CLIP: bytes, bytes + "</w>", one
  // entry per merge, SOT, EOT. `where` names the source in error messages and `first_line` is the
  // file line of merge 0 (0 for an in-memory list).
  void build(std::vector<Merge> m, const std::string& where, size_t first_line) {
    merges = std::move(m);
    if (merges.size() > static_cast<size_t>(kMaxMerges))
      throw UserError(where + " has " + std::to_string(merges.size()) + " merges; CLIP keeps at most " +
                      std::to_string(kMaxMerges));
    vocab.clear();
    vocab.reserve(512 + merges.size() + 2);
    std::vector<std::string> base(256);
    for (int b = 0; b < 256; ++b) base[static_cast<size_t>(text::byte_rank(static_cast<uint8_t>(b)))] = text::byte_to_unicode(static_cast<uint8_t>(b));
    for (const auto& s : base) vocab.push_back(s);
    for (const auto& s : base) vocab.push_back(s + "</w>");
    std::unordered_map<std::string, int32_t> known;  // symbols available so far
    known.reserve(vocab.size() + merges.size());
    for (size_t i = 0; i < vocab.size(); ++i) known[vocab[i]] = static_cast<int32_t>(i);
    for (size_t i = 0; i < merges.size(); ++i) {
      const auto& [a, b] = merges[i];
      if (!known.count(a) || !known.count(b))
        throw UserError(where + (first_line ? " line " + std::to_string(first_line + i) : " entry " + std::to_string(i)) +
                        ": merge '" + a + " " + b +
                        "' uses a symbol that is neither a byte nor an earlier merge; this is not a CLIP BPE merges file");
      vocab.push_back(a + b);
      known[vocab.back()] = static_cast<int32_t>(vocab.size() - 1);
    }
    vocab.push_back(kSot);
    vocab.push_back(kEot);
    encoder.clear();
    encoder.reserve(vocab.size());
    for (size_t i = 0; i < vocab.size(); ++i) encoder[vocab[i]] = static_cast<int32_t>(i);  // last wins
    sot = encoder.at(kSot);
    eot = encoder.at(kEot);
    for (int b = 0; b < 256; ++b) {
      const std::string& s = text::byte_to_unicode(static_cast<uint8_t>(b));
      byte_id[b] = encoder.at(s);
      byte_end_id[b] = encoder.at(s + "</w>");
    }
    rules.clear();
    rules.reserve(merges.size() * 2);
    for (size_t i = 0; i < merges.size(); ++i) {
      const auto& [a, b] = merges[i];
      rules[pair_key(encoder.at(a), encoder.at(b))] = {static_cast<int32_t>(i), encoder.at(a + b)};  // last wins
    }
    // Raw bytes per id, for decode: every character of a vocabulary string is in the byte
    // alphabet ("</w>" and the special tokens are printable ASCII, which stands for itself).
    std::unordered_map<std::string, uint8_t> byte_of;
    for (int b = 0; b < 256; ++b) byte_of[text::byte_to_unicode(static_cast<uint8_t>(b))] = static_cast<uint8_t>(b);
    id_bytes.assign(vocab.size(), std::string());
    for (size_t i = 0; i < vocab.size(); ++i) {
      const std::string& v = vocab[i];
      for (size_t p = 0; p < v.size();) {
        const unsigned char lead = static_cast<unsigned char>(v[p]);
        const size_t len = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
        auto it = byte_of.find(v.substr(p, len));
        if (it == byte_of.end())
          throw UserError(where + ": token '" + v + "' contains a character outside CLIP's byte alphabet; this is not a CLIP BPE merges file");
        id_bytes[i].push_back(static_cast<char>(it->second));
        p += len;
      }
    }
    cache.clear();
  }

  // CLIP's bpe(): the word's bytes as symbols, "</w>" on the last, then repeatedly merge every
  // occurrence (left to right) of the adjacent pair with the lowest rank.
  std::vector<int32_t> bpe(const std::string& word) const {
    std::vector<int32_t> w;
    w.reserve(word.size());
    for (size_t i = 0; i < word.size(); ++i) {
      const auto b = static_cast<uint8_t>(word[i]);
      w.push_back(i + 1 == word.size() ? byte_end_id[b] : byte_id[b]);
    }
    while (w.size() > 1) {
      int32_t best_rank = INT32_MAX, best_left = -1, best_right = -1, best_result = -1;
      for (size_t i = 0; i + 1 < w.size(); ++i) {
        auto it = rules.find(pair_key(w[i], w[i + 1]));
        if (it != rules.end() && it->second.rank < best_rank) {
          best_rank = it->second.rank;
          best_left = w[i];
          best_right = w[i + 1];
          best_result = it->second.result;
        }
      }
      if (best_rank == INT32_MAX) break;
      size_t out = 0;
      for (size_t i = 0; i < w.size();) {
        if (i + 1 < w.size() && w[i] == best_left && w[i + 1] == best_right) {
          w[out++] = best_result;
          i += 2;
        } else {
          w[out++] = w[i++];
        }
      }
      w.resize(out);
    }
    return w;
  }

  void append_word(const std::string& word, std::vector<int32_t>& ids) const {
    if (word == kSot) {
      ids.push_back(sot);
      return;
    }
    if (word == kEot) {
      ids.push_back(eot);
      return;
    }
    {
      std::shared_lock<std::shared_mutex> lock(cache_mutex);
      auto it = cache.find(word);
      if (it != cache.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> w = bpe(word);
    ids.insert(ids.end(), w.begin(), w.end());
    std::unique_lock<std::shared_mutex> lock(cache_mutex);
    if (cache.size() >= kMaxCacheEntries) cache.clear();
    cache.emplace(word, std::move(w));
  }
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_file(const std::string& path) {
  const std::string data = read_all(path);
  if (data.empty()) throw UserError("tokenizer vocabulary '" + path + "' is empty: download bpe_simple_vocab_16e6.txt.gz again");
  if (text::utf8_encode(text::utf8_decode(data)) != data)
    throw UserError("tokenizer vocabulary '" + path + "' is not UTF-8 text: pass CLIP's bpe_simple_vocab_16e6.txt.gz");
  // CLIP: lines = text.split('\n'); merges = lines[1 : 49152-256-2+1]; each merge = line.split()
  std::vector<Merge> merges;
  size_t pos = data.find('\n');  // line 1 is the header
  size_t line_no = 1;
  while (pos != std::string::npos && merges.size() < static_cast<size_t>(kMaxMerges)) {
    const size_t begin = pos + 1;
    size_t end = data.find('\n', begin);
    pos = end;
    if (end == std::string::npos) end = data.size();
    ++line_no;
    const std::string line = data.substr(begin, end - begin);
    if (pos == std::string::npos && line.empty()) break;  // text after the final newline
    std::vector<std::string> parts;
    for (size_t p = 0; p < line.size();) {  // str.split(): runs of ASCII whitespace
      while (p < line.size() && std::isspace(static_cast<unsigned char>(line[p]))) ++p;
      size_t q = p;
      while (q < line.size() && !std::isspace(static_cast<unsigned char>(line[q]))) ++q;
      if (q > p) parts.push_back(line.substr(p, q - p));
      p = q;
    }
    if (parts.size() != 2)
      throw UserError("tokenizer vocabulary '" + path + "' line " + std::to_string(line_no) + ": expected a merge 'a b', got '" +
                      line.substr(0, 80) + "'; pass CLIP's bpe_simple_vocab_16e6.txt.gz");
    merges.emplace_back(std::move(parts[0]), std::move(parts[1]));
  }
  Tokenizer t;
  t.impl_->build(std::move(merges), "tokenizer vocabulary '" + path + "'", 2);
  return t;
}

Tokenizer Tokenizer::from_merges(const std::vector<Merge>& merges) {
  Tokenizer t;
  t.impl_->build(merges, "merge list", 0);
  return t;
}

void Tokenizer::save(const std::string& path) const {
  gzFile f = gzopen(path.c_str(), "wb");
  if (!f) throw UserError("cannot write tokenizer merges to '" + path + "': check that its directory exists and is writable");
  std::string out = "#version: 0.2\n";
  for (const auto& [a, b] : impl_->merges) out += a + " " + b + "\n";
  const int n = gzwrite(f, out.data(), static_cast<unsigned>(out.size()));
  const int rc = gzclose(f);
  if (n != static_cast<int>(out.size()) || rc != Z_OK)
    throw UserError("failed writing tokenizer merges to '" + path + "': check free disk space");
}

const std::vector<Tokenizer::Merge>& Tokenizer::merges() const { return impl_->merges; }

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  for (const std::string& word : text::words_of(text)) impl_->append_word(word, ids);
  return ids;
}

std::vector<int32_t> Tokenizer::tokenize(const std::string& text, int context_length) const {
  if (context_length < 2)
    throw UserError("context length " + std::to_string(context_length) + " cannot hold the start and end tokens; use at least 2 (CLIP: 77)");
  std::vector<int32_t> ids;
  ids.reserve(static_cast<size_t>(context_length));
  ids.push_back(impl_->sot);
  for (const std::string& word : text::words_of(text)) {
    impl_->append_word(word, ids);
    if (ids.size() >= static_cast<size_t>(context_length)) break;  // the rest is truncated anyway
  }
  ids.push_back(impl_->eot);
  if (ids.size() > static_cast<size_t>(context_length)) {
    ids.resize(static_cast<size_t>(context_length));
    ids.back() = impl_->eot;
  }
  ids.resize(static_cast<size_t>(context_length), 0);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= impl_->id_bytes.size())
      throw UserError("token id " + std::to_string(id) + " is outside this vocabulary [0, " + std::to_string(vocab_size()) +
                      "): the ids come from a different tokenizer");
    bytes += impl_->id_bytes[static_cast<size_t>(id)];
  }
  // bytearray(...).decode('utf-8', errors='replace').replace('</w>', ' ')
  const std::string text = text::utf8_encode(text::utf8_decode(bytes));
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 4, "</w>") == 0) {
      out.push_back(' ');
      i += 4;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

const std::string& Tokenizer::token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->vocab.size())
    throw UserError("token id " + std::to_string(id) + " is outside this vocabulary [0, " + std::to_string(vocab_size()) + ")");
  return impl_->vocab[static_cast<size_t>(id)];
}

int Tokenizer::vocab_size() const { return static_cast<int>(impl_->vocab.size()); }
int Tokenizer::sot() const { return impl_->sot; }
int Tokenizer::eot() const { return impl_->eot; }

}  // namespace pc
