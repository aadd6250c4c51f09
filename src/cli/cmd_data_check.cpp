// pyramidclip data check: reads shards end to end and reports what a loader would skip.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "options.h"
#include "pyramidclip/data/check.h"
#include "pyramidclip/util/errors.h"

namespace pc::cli {

int cmd_data_check(int argc, char** argv) {
  CheckOptions d;
  po::options_description opts("Check options");
  opts.add_options()
      ("shards", po::value<std::string>()->required(),
       "shards to check: a brace pattern (data/{00000..00099}.tar), a .txt list file or a directory "
       "(also the first positional argument)")
      ("json", po::value<std::string>(), "also write the report as JSON here")
      ("decode", po::value<bool>()->default_value(d.decode), "decode every image (false: only check one is present)")
      ("roi-dim", po::value<int64_t>()->default_value(d.roi_dim), "required second dimension of K.roi.npy")
      ("jobs", po::value<int>()->default_value(d.jobs), "shards checked in parallel");
  po::positional_options_description pos;
  pos.add("shards", 1);
  po::variables_map vm;
  if (!parse("data check",
             "Reads every sample of WebDataset shards and counts, per shard: samples, images decoded, corrupt "
             "images, samples without an image or caption, missing summary/tags/roi sidecars (optional, not bad), "
             "bad .roi.npy members and damaged (e.g. truncated) tars.\n"
             "Exit code: 0 when every sample is good, 1 when some samples are bad or a shard is damaged, "
             "2 on a usage error (e.g. missing shards).",
             opts, argc, argv, vm, &pos))
    return 0;
  CheckOptions o;
  o.shards = get<std::string>(vm, "shards");
  o.decode = get<bool>(vm, "decode");
  o.roi_dim = get<int64_t>(vm, "roi-dim");
  o.jobs = get<int>(vm, "jobs");
  std::ofstream json_out;
  if (vm.count("json")) {  // open first: an unwritable path is a usage error before the long pass
    json_out.open(get<std::string>(vm, "json"));
    require(json_out.good(), "cannot write " + get<std::string>(vm, "json") + ": check the --json path");
  }
  const CheckReport r = check_shards(o);
  std::fputs(check_table(r).c_str(), stdout);
  if (json_out.is_open()) {
    json_out << check_json(r).dump(2) << '\n';
    require(json_out.good(), "cannot write " + get<std::string>(vm, "json"));
  }
  return r.ok() ? 0 : 1;
}

}  // namespace pc::cli
