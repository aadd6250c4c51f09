// pyramidclip tokenize: each stdin line -> its context-length token ids, space-separated.
#include <iostream>
#include <string>

#include "commands.h"
#include "options.h"
#include "pyramidclip/text/tokenizer.h"
#include "pyramidclip/util/errors.h"

namespace pc::cli {

int cmd_tokenize(int argc, char** argv) {
  po::options_description opts("Tokenize options");
  opts.add_options()("vocab", po::value<std::string>()->required(), "BPE merges file (bpe_simple_vocab_16e6.txt.gz)")(
      "context-length", po::value<int>()->default_value(77), "tokens per line (SOT + text + EOT, zero-padded)");
  po::variables_map vm;
  if (!parse("tokenize", "Reads lines on stdin and prints each line's token ids (CLIP's tokenizer).", opts, argc, argv,
             vm))
    return 0;
  const int ctx = get<int>(vm, "context-length");
  require(ctx >= 2, "--context-length must be at least 2 (SOT and EOT)");
  Tokenizer tok = Tokenizer::from_file(get<std::string>(vm, "vocab"));
  std::ios::sync_with_stdio(false);
  std::string line, out;
  while (std::getline(std::cin, line)) {
    out.clear();
    for (int32_t id : tok.tokenize(line, ctx)) {
      if (!out.empty()) out += ' ';
      out += std::to_string(id);
    }
    std::cout << out << '\n';
  }
  return 0;
}

}  // namespace pc::cli
