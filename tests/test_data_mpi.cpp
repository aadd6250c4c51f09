// The loader under mpirun -np 2: a run saved mid-epoch (the ranks' states all-gathered and
// merged, as a checkpoint does) resumes on 1 rank and on 2 ranks; the sample keys every rank
// logs show each sample of the epoch exactly once, in the uninterrupted run's global batches.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "pyramidclip/data/loader_state.h"
#include "pyramidclip/data/synth.h"
#include "pyramidclip/data/train_loader.h"
#include "test_data_util.h"

namespace pc {
namespace {

int mpi_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// Every rank's encoded state, gathered on all ranks and merged.
LoaderState gather_state(const TrainLoader& l) {
  const std::vector<int64_t> mine = l.state().encode();
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  std::vector<int64_t> all(mine.size() * static_cast<size_t>(world));
  MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_INT64_T, all.data(), static_cast<int>(mine.size()),
                MPI_INT64_T, MPI_COMM_WORLD);
  std::vector<LoaderState> parts;
  for (int r = 0; r < world; ++r)
    parts.push_back(LoaderState::decode({all.begin() + r * static_cast<int64_t>(mine.size()),
                                         all.begin() + (r + 1) * static_cast<int64_t>(mine.size())}));
  return LoaderState::merge(parts);
}

// Appends "step epoch key" lines: the key log a run writes.
void log_keys(const std::string& path, int step, const Batch& b) {
  std::ofstream f(path, std::ios::app);
  for (size_t i = 0; i < b.keys.size(); ++i) f << step << ' ' << b.epochs[i] << ' ' << b.keys[i] << '\n';
}

// step -> (key -> epoch) from key logs.
std::map<int, std::map<std::string, int64_t>> read_logs(const std::vector<std::string>& paths) {
  std::map<int, std::map<std::string, int64_t>> out;
  for (const auto& p : paths) {
    std::ifstream f(p);
    int step;
    int64_t epoch;
    std::string key;
    while (f >> step >> epoch >> key) EXPECT_TRUE(out[step].emplace(key, epoch).second) << key << " twice in step " << step;
  }
  return out;
}

TEST(DataMpi, SavedOnTwoRanksResumedOnOneAndTwoSeesEachSampleOnce) {
  const int rank = mpi_rank();
  // rank 0 writes the data; the directory name is agreed through a broadcast
  char dir_name[512] = {0};
  std::unique_ptr<test::TempDir> dir;
  if (rank == 0) {
    dir = std::make_unique<test::TempDir>("data_mpi");
    SynthOptions o;
    o.out_dir = dir->str("synth");
    o.train_samples = 60;
    o.samples_per_shard = 10;
    o.heldout_per_class = 1;
    synth_dataset(o);
    std::snprintf(dir_name, sizeof dir_name, "%s", dir->str("").c_str());
  }
  MPI_Bcast(dir_name, sizeof dir_name, MPI_CHAR, 0, MPI_COMM_WORLD);
  const std::string root = dir_name;
  auto options = [&](int r, int world) {
    TrainLoaderOptions o;
    o.shards = root + "/synth/train/{00000..00005}.tar";
    o.image_size = 16;
    o.batch_size = 12 / world;
    o.rank = r;
    o.world_size = world;
    o.seed = 7;
    o.streams = 4;
    o.shuffle_block = 4;
    return o;
  };
  auto log = [&](const std::string& run, int r) { return root + "/" + run + "-rank" + std::to_string(r) + ".keys"; };
  constexpr int kSteps = 10, kSaveAt = 3;  // 120 positions: past epoch 0 of every stream (60 samples)

  // uninterrupted 2-rank run
  {
    TrainLoader l(options(rank, 2), test::toy_tokenize);
    for (int step = 0; step < kSteps; ++step) log_keys(log("full", rank), step, l.next());
  }
  // interrupted at kSaveAt, the state written to a file as a checkpoint would
  {
    TrainLoader l(options(rank, 2), test::toy_tokenize);
    for (int step = 0; step < kSaveAt; ++step) log_keys(log("first", rank), step, l.next());
    const LoaderState s = gather_state(l);
    if (rank == 0) {
      std::ofstream f(root + "/state.bin", std::ios::binary);
      const std::vector<int64_t> v = s.encode();
      f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(int64_t)));
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const std::string bytes = test::read_file(root + "/state.bin");
  std::vector<int64_t> enc(bytes.size() / sizeof(int64_t));
  std::memcpy(enc.data(), bytes.data(), enc.size() * sizeof(int64_t));
  const LoaderState saved = LoaderState::decode(enc);
  EXPECT_EQ(saved.position, kSaveAt * 12);

  // resumed on 2 ranks, and on rank 0 alone
  {
    TrainLoader l(options(rank, 2), test::toy_tokenize);
    l.restore(saved);
    for (int step = kSaveAt; step < kSteps; ++step) log_keys(log("resumed2", rank), step, l.next());
  }
  if (rank == 0) {
    TrainLoader l(options(0, 1), test::toy_tokenize);
    l.restore(saved);
    for (int step = kSaveAt; step < kSteps; ++step) log_keys(log("resumed1", 0), step, l.next());
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank != 0) return;

  const auto full = read_logs({log("full", 0), log("full", 1)});
  const auto first = read_logs({log("first", 0), log("first", 1)});
  for (const auto& [name, resumed] : {std::pair<std::string, std::map<int, std::map<std::string, int64_t>>>{
                                          "2 ranks", read_logs({log("resumed2", 0), log("resumed2", 1)})},
                                      {"1 rank", read_logs({log("resumed1", 0)})}}) {
    std::multiset<std::string> epoch0;
    for (int step = 0; step < kSteps; ++step) {
      const auto& got = step < kSaveAt ? first.at(step) : resumed.at(step);
      EXPECT_EQ(got, full.at(step)) << name << ": global batch " << step << " differs from the uninterrupted run";
      for (const auto& [key, epoch] : got)
        if (epoch == 0) epoch0.insert(key);
    }
    EXPECT_EQ(epoch0.size(), 60u) << name;
    EXPECT_EQ(std::set<std::string>(epoch0.begin(), epoch0.end()).size(), 60u) << name;
  }
}

}  // namespace
}  // namespace pc
