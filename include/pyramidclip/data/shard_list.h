#pragma once
// Which shard files a dataset spec names (DESIGN §3): a brace pattern, a list file or a directory.
#include <string>
#include <vector>

namespace pc {

// Expands WebDataset/braceexpand patterns: numeric ranges keep the zero padding of their first
// bound ("{00000..00012}" -> 00000 ... 00012; "{8..10}" -> 8 9 10), comma lists ("{a,b}") and
// several braces multiply ("{a,b}/{0..1}" -> a/0 a/1 b/0 b/1). Text without braces is returned
// as is. Throws UserError on an unbalanced brace or a descending/overlong range.
std::vector<std::string> expand_braces(const std::string& pattern);

// Resolves a shard spec to a list of existing files, in order:
//  - a directory: its *.tar / *.tar.gz / *.tgz files, sorted by name;
//  - a file ending in .txt: one path per line (blank lines and '#' comments ignored; relative
//    paths are relative to the list file's directory; each line may itself be a brace pattern);
//  - anything else: a brace pattern (or a single path).
// Several specs may be joined with "::" (as in open_clip). Throws UserError naming the first
// missing file, or when the spec resolves to no shard at all.
std::vector<std::string> list_shards(const std::string& spec);

}  // namespace pc
