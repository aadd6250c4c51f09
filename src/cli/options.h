#pragma once
// Shared option handling for the subcommands: Boost.Program_options with INI config files
// (sections map to dotted names: [train] lr = ... is --train.lr) and command-line overrides.
#include <boost/program_options.hpp>

#include <string>
#include <vector>

#include "pyramidclip/model/model_config.h"

namespace pc::cli {

namespace po = boost::program_options;

// Parses argv (after the subcommand words) and, when --config is given, that file; the command
// line wins. Returns false when --help was printed. Throws UserError on any bad option.
bool parse(const std::string& command, const std::string& summary, po::options_description& opts, int argc,
           char** argv, po::variables_map& vm, const po::positional_options_description* positional = nullptr);

void add_model_options(po::options_description& opts);
ModelConfig model_config_from(const po::variables_map& vm);

// The options that were set (from file or command line), as an INI text that `--config` reads back.
std::string resolved_config_text(const po::variables_map& vm, const std::vector<std::string>& skip = {});

template <class T>
T get(const po::variables_map& vm, const std::string& name) {
  return vm[name].as<T>();
}

}  // namespace pc::cli
