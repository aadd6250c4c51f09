// Tokenizer::train: byte-level BPE training on CLIP's pre-tokenized words, producing merges in
// the bpe_simple_vocab format. Each step merges the most frequent adjacent pair (ties: the
// lexicographically smallest pair of symbol strings), so the result depends only on the texts.
// Pair counts are kept incrementally with an index pair -> words and a lazily updated heap, so a
// merge costs time proportional to the words that contain its pair.
#include <algorithm>
#include <map>
#include <queue>
#include <unordered_map>

#include "pyramidclip/text/text_clean.h"
#include "pyramidclip/text/tokenizer.h"
#include "pyramidclip/util/errors.h"

namespace pc {
namespace {

using Pair = uint64_t;
Pair make_pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }
int32_t left_of(Pair p) { return static_cast<int32_t>(p >> 32); }
int32_t right_of(Pair p) { return static_cast<int32_t>(p & 0xFFFFFFFFu); }

struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
  uint32_t visited = 0;  // merge step that last rewrote this word (dedups the pair index)
};

class Trainer {
 public:
  explicit Trainer(const std::vector<std::string>& texts) {
    for (int b = 0; b < 256; ++b) symbol(text::byte_to_unicode(static_cast<uint8_t>(b)));
    for (int b = 0; b < 256; ++b) symbol(text::byte_to_unicode(static_cast<uint8_t>(b)) + "</w>");
    std::map<std::string, int64_t> counts;  // ordered: word indices do not depend on hashing
    for (const std::string& t : texts)
      for (std::string& w : text::words_of(t))
        if (w != "<|startoftext|>" && w != "<|endoftext|>") ++counts[std::move(w)];
    words_.reserve(counts.size());
    for (const auto& [w, c] : counts) {
      Word word;
      word.count = c;
      for (size_t i = 0; i < w.size(); ++i) {
        const std::string& ch = text::byte_to_unicode(static_cast<uint8_t>(w[i]));
        word.symbols.push_back(i + 1 == w.size() ? symbol(ch + "</w>") : symbol(ch));
      }
      words_.push_back(std::move(word));
    }
    for (size_t i = 0; i < words_.size(); ++i) add_pairs(static_cast<int32_t>(i), +1);
    for (const auto& [p, c] : pair_count_) push(p, c);
    changed_.clear();
  }

  std::vector<Tokenizer::Merge> run(int num_merges) {
    std::vector<Tokenizer::Merge> merges;
    while (static_cast<int>(merges.size()) < num_merges) {
      Pair best = 0;
      bool found = false;
      while (!heap_.empty()) {
        const Entry top = heap_.top();
        heap_.pop();
        auto it = pair_count_.find(top.pair);
        if (it != pair_count_.end() && it->second == top.count && top.count > 0) {
          best = top.pair;
          found = true;
          break;
        }
      }
      if (!found) break;  // every word is a single symbol
      merges.emplace_back(names_[static_cast<size_t>(left_of(best))], names_[static_cast<size_t>(right_of(best))]);
      apply(best, symbol(merges.back().first + merges.back().second), static_cast<uint32_t>(merges.size()));
    }
    return merges;
  }

 private:
  struct Entry {
    int64_t count;
    Pair pair;
  };
  // Heap order: higher count first; on ties the smaller (left, right) by string comparison.
  struct Lower {
    const std::vector<std::string>* names;
    bool operator()(const Entry& x, const Entry& y) const {
      if (x.count != y.count) return x.count < y.count;
      const std::string& xl = (*names)[static_cast<size_t>(left_of(x.pair))];
      const std::string& yl = (*names)[static_cast<size_t>(left_of(y.pair))];
      if (xl != yl) return xl > yl;
      return (*names)[static_cast<size_t>(right_of(x.pair))] > (*names)[static_cast<size_t>(right_of(y.pair))];
    }
  };

  int32_t symbol(const std::string& s) {
    auto [it, inserted] = ids_.emplace(s, static_cast<int32_t>(names_.size()));
    if (inserted) names_.push_back(s);
    return it->second;
  }

  void push(Pair p, int64_t c) {
    if (c > 0) heap_.push({c, p});
  }

  // Adds (sign=+1) or removes (-1) the word's adjacent pairs from the counts; records changes.
  void add_pairs(int32_t wi, int sign) {
    const Word& w = words_[static_cast<size_t>(wi)];
    for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
      const Pair p = make_pair_key(w.symbols[i], w.symbols[i + 1]);
      pair_count_[p] += sign * w.count;
      changed_.push_back(p);
      if (sign > 0) where_[p].push_back(wi);
    }
  }

  void apply(Pair best, int32_t merged, uint32_t step) {
    const int32_t a = left_of(best), b = right_of(best);
    const std::vector<int32_t> holders = std::move(where_[best]);
    where_.erase(best);
    changed_.clear();
    for (int32_t wi : holders) {
      Word& w = words_[static_cast<size_t>(wi)];
      if (w.visited == step) continue;
      w.visited = step;
      bool has = false;
      for (size_t i = 0; i + 1 < w.symbols.size() && !has; ++i) has = w.symbols[i] == a && w.symbols[i + 1] == b;
      if (!has) continue;  // stale index entry
      add_pairs(wi, -1);
      size_t out = 0;
      for (size_t i = 0; i < w.symbols.size();) {
        if (i + 1 < w.symbols.size() && w.symbols[i] == a && w.symbols[i + 1] == b) {
          w.symbols[out++] = merged;
          i += 2;
        } else {
          w.symbols[out++] = w.symbols[i++];
        }
      }
      w.symbols.resize(out);
      add_pairs(wi, +1);
    }
    std::sort(changed_.begin(), changed_.end());
    changed_.erase(std::unique(changed_.begin(), changed_.end()), changed_.end());
    for (Pair p : changed_) {
      auto it = pair_count_.find(p);
      if (it == pair_count_.end()) continue;
      if (it->second <= 0) {
        pair_count_.erase(it);
        continue;
      }
      push(p, it->second);
    }
  }

  std::vector<std::string> names_;                 // symbol id -> string
  std::unordered_map<std::string, int32_t> ids_;   // string -> symbol id
  std::vector<Word> words_;
  std::unordered_map<Pair, int64_t> pair_count_;
  std::unordered_map<Pair, std::vector<int32_t>> where_;  // pair -> words that (may) contain it
  std::vector<Pair> changed_;
  std::priority_queue<Entry, std::vector<Entry>, Lower> heap_{Lower{&names_}};
};

}  // namespace

Tokenizer Tokenizer::train(const std::vector<std::string>& texts, int num_merges) {
  if (num_merges < 0 || num_merges > kMaxMerges)
    throw UserError("number of BPE merges must be in [0, " + std::to_string(kMaxMerges) + "], got " + std::to_string(num_merges));
  Trainer trainer(texts);
  return from_merges(trainer.run(num_merges));
}

}  // namespace pc
