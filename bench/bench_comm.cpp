// Gradient-sync benchmark (issue #4), run under mpirun (bench/run_comm.sh):
//  1. bandwidth: a ViT-B/16-sized CLIP gradient (149.6M fp32 parameters, ~600 MB; plus a
//     smaller size) averaged by a raw in-place MPI_Allreduce of the whole buffer, by one
//     Comm::allreduce_sum (the communication thread), and by GradBuckets (25 MB buckets, average
//     included); the same for the ZeRO-2 reduce-scatter. Bus bandwidth as nccl-tests report it:
//     allreduce 2(n-1)/n * bytes / t, reduce-scatter (n-1)/n * bytes / t.
//  2. overlap: a stack of Linear layers (forward + backward + finalize per step) with no sync,
//     with overlap off (all buckets in finalize) and on (buckets start from the backward hooks);
//     the exposed communication is finalize()'s wall time.
// Repetitions are interleaved (the order rotates) and the medians of the slowest rank's times
// are reported side by side. Rank 0 prints a table and writes --json.
#include <mpi.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "pyramidclip/dist/comm.h"
#include "pyramidclip/dist/grad_buckets.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Parameter shapes of OpenAI CLIP ViT-B/16 (149,620,737 parameters) or a narrower/shallower
// model of the same structure.
std::vector<std::vector<int64_t>> clip_shapes(int64_t vwidth, int vlayers, int64_t twidth, int tlayers,
                                              int64_t vocab) {
  std::vector<std::vector<int64_t>> s;
  auto block = [&](int64_t w) {
    s.push_back({3 * w, w});  // attn.in_proj_weight
    s.push_back({3 * w});
    s.push_back({w, w});  // attn.out_proj
    s.push_back({w});
    s.push_back({w});  // ln_1
    s.push_back({w});
    s.push_back({4 * w, w});  // mlp.c_fc
    s.push_back({4 * w});
    s.push_back({w, 4 * w});  // mlp.c_proj
    s.push_back({w});
    s.push_back({w});  // ln_2
    s.push_back({w});
  };
  const int64_t embed = 512, patches = 197;
  s.push_back({vwidth, 3, 16, 16});  // visual.conv1
  s.push_back({vwidth});            // class_embedding
  s.push_back({patches, vwidth});   // positional_embedding
  s.push_back({vwidth});            // ln_pre
  s.push_back({vwidth});
  for (int l = 0; l < vlayers; ++l) block(vwidth);
  s.push_back({vwidth});  // ln_post
  s.push_back({vwidth});
  s.push_back({vwidth, embed});  // visual.proj
  s.push_back({vocab, twidth});  // token_embedding
  s.push_back({77, twidth});     // positional_embedding
  for (int l = 0; l < tlayers; ++l) block(twidth);
  s.push_back({twidth});  // ln_final
  s.push_back({twidth});
  s.push_back({twidth, embed});  // text_projection
  s.push_back({});               // logit_scale
  return s;
}

struct Args {
  std::vector<std::string> sizes = {"vit-b16", "small"};
  int reps = 5;
  int64_t bucket_mb = 25;
  int layers = 8, width = 2048, batch = 64, overlap_reps = 7;
  bool bandwidth = true, overlap = true;
  std::string json;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      TORCH_CHECK(i + 1 < argc, k, " needs a value");
      return argv[++i];
    };
    if (k == "--sizes") {
      a.sizes.clear();
      std::string v = next(), item;
      for (char c : v + ",") {
        if (c == ',') {
          if (!item.empty()) a.sizes.push_back(item);
          item.clear();
        } else {
          item += c;
        }
      }
    } else if (k == "--reps") a.reps = std::stoi(next());
    else if (k == "--bucket-mb") a.bucket_mb = std::stoll(next());
    else if (k == "--layers") a.layers = std::stoi(next());
    else if (k == "--width") a.width = std::stoi(next());
    else if (k == "--batch") a.batch = std::stoi(next());
    else if (k == "--overlap-reps") a.overlap_reps = std::stoi(next());
    else if (k == "--no-bandwidth") a.bandwidth = false;
    else if (k == "--no-overlap") a.overlap = false;
    else if (k == "--json") a.json = next();
    else TORCH_CHECK(false, "unknown option ", k);
  }
  return a;
}

// slowest rank's time
double max_over_ranks(pc::Comm& comm, double t) {
  at::Tensor x = torch::tensor({t}, torch::kDouble);
  comm.allreduce_max(x);
  return x.item<double>();
}

std::vector<at::Tensor> make_params(const std::vector<std::vector<int64_t>>& shapes) {
  std::vector<at::Tensor> ps;
  for (const auto& s : shapes) ps.push_back(torch::zeros(s).requires_grad_());
  return ps;
}

nlohmann::json bandwidth(pc::Comm& comm, const std::string& size, const Args& a) {
  const int world = comm.size();
  auto shapes = size == "vit-b16" ? clip_shapes(768, 12, 512, 12, 49408) : clip_shapes(384, 6, 256, 6, 16384);
  std::vector<at::Tensor> params = make_params(shapes);
  int64_t numel = 0;
  for (const auto& p : params) numel += p.numel();
  pc::GradBucketsOptions o;
  o.bucket_bytes = a.bucket_mb << 20;
  o.overlap = false;
  pc::GradBuckets buckets(params, comm, o);
  o.reduce_scatter = true;
  auto params_rs = make_params(shapes);
  pc::GradBuckets buckets_rs(params_rs, comm, o);
  const int64_t padded = buckets.padded_numel();
  const double bytes = 4.0 * padded;
  at::Tensor raw = torch::ones({padded});
  at::Tensor raw_rs_out = torch::zeros({padded / world});
  at::Tensor single = torch::ones({padded});
  buckets.flat_grad().fill_(1);
  buckets_rs.flat_grad().fill_(1);

  const std::vector<std::string> methods = {"mpi_allreduce",      "comm_allreduce",      "buckets_allreduce",
                                            "mpi_reduce_scatter", "comm_reduce_scatter", "buckets_reduce_scatter"};
  std::map<std::string, std::vector<double>> times;
  for (int rep = 0; rep < a.reps + 1; ++rep) {  // rep 0: warm-up, not counted
    for (size_t k = 0; k < methods.size(); ++k) {
      const std::string& m = methods[(k + rep) % methods.size()];
      comm.barrier();
      const auto t0 = Clock::now();
      if (m == "mpi_allreduce") {
        MPI_Allreduce(MPI_IN_PLACE, raw.data_ptr(), static_cast<int>(padded), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      } else if (m == "comm_allreduce") {
        comm.allreduce_sum(single);
      } else if (m == "buckets_allreduce") {
        buckets.finalize();
      } else if (m == "comm_reduce_scatter") {
        comm.reduce_scatter_sum(single, raw_rs_out);
      } else if (m == "mpi_reduce_scatter") {
        MPI_Reduce_scatter_block(raw.data_ptr(), raw_rs_out.data_ptr(), static_cast<int>(padded / world), MPI_FLOAT,
                                 MPI_SUM, MPI_COMM_WORLD);
      } else {
        buckets_rs.finalize();
      }
      const double t = max_over_ranks(comm, since(t0));
      if (rep > 0) times[m].push_back(t);
      // keep the values bounded: sums of ones
      if (m == "mpi_allreduce") raw.fill_(1);
      if (m == "comm_allreduce") single.fill_(1);
    }
  }
  // correctness of what was timed: averages of ones are ones
  TORCH_CHECK(torch::all(buckets.flat_grad() == 1).item<bool>(), "bucketed average wrong");
  TORCH_CHECK(torch::all(buckets_rs.shard_grad() == 1).item<bool>(), "bucketed reduce-scatter wrong");

  nlohmann::json out = {{"size", size},
                        {"parameters", numel},
                        {"bytes", bytes},
                        {"buckets", buckets.num_buckets()},
                        {"bucket_mb", a.bucket_mb}};
  const double ar = 2.0 * (world - 1) / world, rs = 1.0 * (world - 1) / world;
  for (const auto& m : methods) {
    const double t = median(times[m]);
    const double factor = m.find("reduce_scatter") != std::string::npos ? rs : ar;
    out["methods"][m] = {{"median_s", t}, {"busbw_gbps", factor * bytes / t / 1e9}, {"times_s", times[m]}};
  }
  out["buckets_over_mpi_allreduce"] =
      out["methods"]["mpi_allreduce"]["median_s"].get<double>() / out["methods"]["buckets_allreduce"]["median_s"].get<double>();
  out["buckets_over_mpi_reduce_scatter"] = out["methods"]["mpi_reduce_scatter"]["median_s"].get<double>() /
                                           out["methods"]["buckets_reduce_scatter"]["median_s"].get<double>();
  return out;
}

nlohmann::json overlap(pc::Comm& comm, const Args& a) {
  torch::manual_seed(0);
  std::vector<torch::nn::Linear> layers;
  std::vector<at::Tensor> params;
  for (int l = 0; l < a.layers; ++l) {
    layers.emplace_back(torch::nn::Linear(a.width, a.width));
    for (auto& p : layers.back()->parameters()) params.push_back(p);
  }
  int64_t numel = 0;
  for (const auto& p : params) numel += p.numel();
  pc::GradBucketsOptions o;
  o.bucket_bytes = a.bucket_mb << 20;
  pc::GradBuckets buckets(params, comm, o);
  at::Tensor x = torch::randn({a.batch, a.width});

  struct Step {
    double forward, backward, exposed, total, comm;
    int launched;
  };
  auto step = [&](const std::string& mode) {
    buckets.zero_grad();
    buckets.set_sync(mode != "none");
    comm.barrier();
    const auto t0 = Clock::now();
    at::Tensor h = x;
    for (auto& l : layers) h = torch::tanh(l->forward(h));
    at::Tensor loss = h.pow(2).mean();
    const double fwd = since(t0);
    const auto t1 = Clock::now();
    loss.backward();
    const double bwd = since(t1);
    double exposed = 0, comm_s = 0;
    int launched = 0;
    if (mode != "none") {
      buckets.finalize();
      exposed = buckets.last_stats().exposed_s;
      comm_s = buckets.last_stats().comm_s;
      launched = buckets.last_stats().launched_in_backward;
    }
    const double total = since(t0);
    return Step{max_over_ranks(comm, fwd), max_over_ranks(comm, bwd), max_over_ranks(comm, exposed),
                max_over_ranks(comm, total), max_over_ranks(comm, comm_s), launched};
  };
  // calibration step (hook counts), then warm-up
  step("off");
  const std::vector<std::string> modes = {"none", "off", "on"};
  std::map<std::string, std::vector<Step>> runs;
  for (int rep = 0; rep < a.overlap_reps + 1; ++rep) {
    for (size_t k = 0; k < modes.size(); ++k) {
      const std::string& m = modes[(k + rep) % modes.size()];
      if (m != "none") {
        buckets.set_overlap(m == "on");
        step(m);  // the switch applies from the next step
      }
      Step s = step(m);
      if (rep > 0) runs[m].push_back(s);
    }
  }
  nlohmann::json out = {{"layers", a.layers},
                        {"width", a.width},
                        {"batch", a.batch},
                        {"parameters", numel},
                        {"bytes", 4.0 * buckets.padded_numel()},
                        {"buckets", buckets.num_buckets()}};
  for (const auto& m : modes) {
    std::vector<double> f, b, e, t, c, l;
    for (const auto& s : runs[m]) {
      f.push_back(s.forward);
      b.push_back(s.backward);
      e.push_back(s.exposed);
      t.push_back(s.total);
      c.push_back(s.comm);
      l.push_back(s.launched);
    }
    out["modes"][m] = {{"forward_s", median(f)},         {"backward_s", median(b)}, {"exposed_s", median(e)},
                       {"step_s", median(t)},            {"comm_s", median(c)},     {"launched_in_backward", median(l)},
                       {"exposed_s_all", e},             {"step_s_all", t}};
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  {
    torch::set_num_threads(1);
    Args a = parse(argc, argv);
    auto comm = pc::make_mpi_comm();
    const int rank = comm->rank();
    nlohmann::json doc = {{"world_size", comm->size()},
                          {"mpi_thread_level", provided},
                          {"torch_threads", torch::get_num_threads()},
                          {"reps", a.reps},
                          {"loadavg_before", loadavg()}};
    if (a.bandwidth) {
      for (const auto& size : a.sizes) {
        nlohmann::json r = bandwidth(*comm, size, a);
        doc["bandwidth"].push_back(r);
        if (rank == 0) {
          std::printf("\n%s: %.1fM fp32 parameters (%.0f MB), %d buckets of %lld MB, medians of %d, slowest rank\n",
                      size.c_str(), r["parameters"].get<double>() / 1e6, r["bytes"].get<double>() / 1e6,
                      r["buckets"].get<int>(), static_cast<long long>(a.bucket_mb), a.reps);
          std::printf("| method | median time | bus bandwidth |\n|---|---|---|\n");
          for (const auto& [name, m] : r["methods"].items())
            std::printf("| %s | %.1f ms | %.2f GB/s |\n", name.c_str(), 1e3 * m["median_s"].get<double>(),
                        m["busbw_gbps"].get<double>());
          std::printf("buckets / raw MPI: allreduce %.0f%%, reduce-scatter %.0f%%\n",
                      100 * r["buckets_over_mpi_allreduce"].get<double>(),
                      100 * r["buckets_over_mpi_reduce_scatter"].get<double>());
          std::fflush(stdout);
        }
      }
    }
    if (a.overlap) {
      nlohmann::json r = overlap(*comm, a);
      doc["overlap"] = r;
      if (rank == 0) {
        std::printf("\noverlap: %d x Linear(%d, %d), batch %d, %.1fM parameters (%.0f MB, %d buckets), medians of %d\n",
                    a.layers, a.width, a.width, a.batch, r["parameters"].get<double>() / 1e6,
                    r["bytes"].get<double>() / 1e6, r["buckets"].get<int>(), a.overlap_reps);
        std::printf("| sync | forward | backward | exposed comm (finalize) | step | buckets started in backward |\n"
                    "|---|---|---|---|---|---|\n");
        for (const char* m : {"none", "off", "on"}) {
          const auto& s = r["modes"][m];
          std::printf("| %s | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %.0f |\n", m, 1e3 * s["forward_s"].get<double>(),
                      1e3 * s["backward_s"].get<double>(), 1e3 * s["exposed_s"].get<double>(),
                      1e3 * s["step_s"].get<double>(), s["launched_in_backward"].get<double>());
        }
        std::fflush(stdout);
      }
    }
    doc["loadavg_after"] = loadavg();
    if (rank == 0 && !a.json.empty()) {
      std::ofstream(a.json) << doc.dump(1) << "\n";
      std::printf("wrote %s\n", a.json.c_str());
    }
  }
  MPI_Finalize();
  return 0;
}
