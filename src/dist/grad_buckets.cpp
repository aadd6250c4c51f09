// Bucketed, overlapped gradient averaging (see grad_buckets.h).
#include "pyramidclip/dist/grad_buckets.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <exception>
#include <mutex>
#include <unordered_set>

#include "pyramidclip/dist/comm.h"

namespace pc {

using Clock = std::chrono::steady_clock;
using torch::autograd::Node;

namespace {
constexpr int kNever = INT_MAX;  // "not ready from hooks this step": the bucket starts in finalize()
}

struct GradBuckets::State {
  struct Bucket {
    int64_t lo = 0, hi = 0;  // [lo, hi) of the flat buffer
    std::vector<int> params;
    int pending = 0;
    bool launched = false;
    WorkPtr work;
  };

  Comm* comm = nullptr;
  GradBucketsOptions opts;
  std::vector<at::Tensor> params;
  std::vector<at::Tensor> views;  // param.grad() views into flat
  std::vector<int64_t> offsets;
  int64_t numel = 0, padded = 0, shard_begin = 0, shard_end = 0;
  at::Tensor flat, shard;
  std::vector<Bucket> buckets;
  std::vector<int> bucket_of;
  std::vector<int> calls, last_calls, expected, need;
  int next_launch = 0;
  bool sync = true;
  bool calibrated = false;
  int launched_in_backward = 0;
  bool in_finalize = false;
  GradSyncStats stats;
  std::vector<std::shared_ptr<Node>> accumulators;  // kept alive: every forward reuses the same node
  std::vector<uintptr_t> hook_keys;
  std::mutex mu;

  bool hooks_launch() const { return opts.overlap && calibrated; }

  void reset_step() {
    std::fill(calls.begin(), calls.end(), 0);
    for (size_t i = 0; i < params.size(); ++i)
      need[i] = hooks_launch() && expected[i] > 0 ? expected[i] : kNever;
    for (auto& b : buckets) {
      b.pending = static_cast<int>(b.params.size());
      b.launched = false;
      b.work.reset();
    }
    next_launch = 0;
    launched_in_backward = 0;
  }

  void launch(int index) {
    Bucket& b = buckets[index];
    at::Tensor in = flat.narrow(0, b.lo, b.hi - b.lo);
    if (!opts.reduce_scatter) {
      b.work = comm->allreduce_sum_async(in, /*average=*/true);
    } else {
      // element e goes to the rank owning it: [r * S, (r + 1) * S)
      const int world = comm->size();
      const int64_t s = padded / world;
      std::vector<int64_t> counts(world);
      for (int r = 0; r < world; ++r)
        counts[r] = std::max<int64_t>(0, std::min(b.hi, (r + 1) * s) - std::max(b.lo, r * s));
      const int64_t mine = counts[comm->rank()];
      const int64_t at = mine > 0 ? std::max(b.lo, shard_begin) - shard_begin : 0;
      b.work = comm->reduce_scatter_v_sum_async(in, shard.narrow(0, at, mine), counts, /*average=*/true);
    }
    b.launched = true;
    if (!in_finalize) ++launched_in_backward;
  }

  void launch_ready() {
    while (next_launch < static_cast<int>(buckets.size()) && buckets[next_launch].pending == 0) launch(next_launch++);
  }

  void mark_ready(int i) {
    if (--buckets[bucket_of[i]].pending == 0) launch_ready();
  }

  void on_grad(int i) {
    std::lock_guard<std::mutex> lock(mu);
    // AccumulateGrad accumulates in place into our view; it replaces the gradient only when it was
    // undefined (someone reset it) or under create_graph: put it back into the flat buffer.
    at::Tensor& g = params[i].mutable_grad();
    if (!g.defined() || !g.is_same(views[i])) {
      if (g.defined()) views[i].copy_(g.detach());
      g = views[i];
    }
    if (!sync) return;
    ++calls[i];
    Bucket& b = buckets[bucket_of[i]];
    TORCH_CHECK(!b.launched, "GradBuckets: parameter ", i, " received a gradient after its bucket was started (",
                calls[i], " hook call(s) in this backward, ", expected[i],
                " expected): use set_sync(false) for all but the last backward of a step, or overlap = false");
    if (calls[i] == need[i]) mark_ready(i);
  }
};

namespace {

class ReadyHook final : public torch::autograd::FunctionPostHook {
 public:
  ReadyHook(std::weak_ptr<GradBuckets::State> state, int index) : state_(std::move(state)), index_(index) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    if (auto s = state_.lock()) s->on_grad(index_);
    return outputs;
  }

 private:
  std::weak_ptr<GradBuckets::State> state_;
  int index_;
};

}  // namespace

GradBuckets::GradBuckets(std::vector<at::Tensor> params, Comm& comm, GradBucketsOptions options)
    : s_(std::make_shared<State>()) {
  State& s = *s_;
  TORCH_CHECK(!params.empty(), "GradBuckets: no parameters");
  TORCH_CHECK(options.bucket_bytes > 0, "GradBuckets: bucket_bytes must be positive");
  s.comm = &comm;
  s.opts = options;
  s.params = std::move(params);
  const auto& first = s.params.front();
  for (const auto& p : s.params) {
    TORCH_CHECK(p.defined() && p.requires_grad(), "GradBuckets: parameters must require grad");
    TORCH_CHECK(p.scalar_type() == first.scalar_type() && p.device() == first.device(),
                "GradBuckets: all parameters need one dtype and device");
    s.offsets.push_back(s.numel);
    s.numel += p.numel();
  }
  const int world = comm.size();
  s.padded = (s.numel + world - 1) / world * world;
  const int64_t shard = s.padded / world;
  s.shard_begin = shard * comm.rank();
  s.shard_end = s.shard_begin + shard;
  s.flat = at::zeros({s.padded}, first.options().requires_grad(false));
  if (s.opts.reduce_scatter) s.shard = at::zeros({shard}, s.flat.options());

  at::NoGradGuard no_grad;
  for (size_t i = 0; i < s.params.size(); ++i) {
    auto& p = s.params[i];
    at::Tensor v = s.flat.narrow(0, s.offsets[i], p.numel()).view(p.sizes());
    if (p.grad().defined()) v.copy_(p.grad());
    s.views.push_back(v);
    p.mutable_grad() = v;
  }

  // buckets over the parameters in reverse order; the padding rides with the last parameter
  const int64_t elem = s.flat.element_size();
  const int n = static_cast<int>(s.params.size());
  s.bucket_of.assign(n, -1);
  State::Bucket cur;
  cur.hi = s.padded;
  int64_t bytes = 0;
  for (int i = n - 1; i >= 0; --i) {
    cur.params.push_back(i);
    s.bucket_of[i] = static_cast<int>(s.buckets.size());
    bytes += s.params[i].numel() * elem;
    if (bytes >= s.opts.bucket_bytes || i == 0) {
      cur.lo = s.offsets[i];
      s.buckets.push_back(cur);
      cur = State::Bucket();
      cur.hi = s.offsets[i];
      bytes = 0;
    }
  }

  s.calls.assign(n, 0);
  s.last_calls.assign(n, 0);
  s.expected.assign(n, s.opts.calibrate ? -1 : 1);
  s.need.assign(n, kNever);
  s.calibrated = !s.opts.calibrate;
  s.reset_step();

  for (int i = 0; i < n; ++i) {
    auto acc = torch::autograd::impl::grad_accumulator(s.params[i]);
    TORCH_CHECK(acc, "GradBuckets: parameter ", i, " has no gradient accumulator (not a leaf?)");
    s.hook_keys.push_back(acc->add_post_hook(std::make_unique<ReadyHook>(s_, i)));
    s.accumulators.push_back(std::move(acc));
  }
}

GradBuckets::~GradBuckets() {
  std::lock_guard<std::mutex> lock(s_->mu);
  for (auto& b : s_->buckets) {
    if (!b.work) continue;
    try {
      b.work->wait();
    } catch (...) {
    }
  }
  for (size_t i = 0; i < s_->accumulators.size(); ++i) s_->accumulators[i]->del_post_hook(s_->hook_keys[i]);
}

void GradBuckets::zero_grad() {
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->flat.zero_();
  if (s_->shard.defined()) s_->shard.zero_();
  for (size_t i = 0; i < s_->params.size(); ++i) {
    at::Tensor& g = s_->params[i].mutable_grad();
    if (!g.defined() || !g.is_same(s_->views[i])) g = s_->views[i];
  }
}

void GradBuckets::expect_graph(const at::Tensor& loss) { expect_graph(std::vector<at::Tensor>{loss}); }

void GradBuckets::expect_graph(const std::vector<at::Tensor>& roots) {
  State& s = *s_;
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.hooks_launch() || !s.sync) return;
  std::unordered_set<const Node*> seen;
  std::vector<Node*> stack;
  for (const auto& root : roots) {
    // a root that is itself a parameter (leaf) reaches its accumulator directly
    Node* node = root.grad_fn() ? root.grad_fn().get() : torch::autograd::impl::try_get_grad_accumulator(root).get();
    TORCH_CHECK(node, "GradBuckets::expect_graph: a root has no graph");
    if (seen.insert(node).second) stack.push_back(node);
  }
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    for (const auto& edge : node->next_edges()) {
      Node* next = edge.function.get();
      if (next && seen.insert(next).second) stack.push_back(next);
    }
  }
  for (size_t i = 0; i < s.params.size(); ++i) {
    if (!seen.count(s.accumulators[i].get())) {
      if (s.need[i] != 0 && s.calls[i] < s.need[i]) {
        s.need[i] = 0;  // not reached: ready now, with the gradient the buffer holds
        s.mark_ready(static_cast<int>(i));
      }
    } else if (s.need[i] == kNever) {
      s.need[i] = 1;  // reached, but got no gradient at calibration
    }
  }
}

void GradBuckets::set_sync(bool on) {
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->sync = on;
}

bool GradBuckets::sync() const { return s_->sync; }

void GradBuckets::set_overlap(bool on) {
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->opts.overlap = on;
}

void GradBuckets::finalize() {
  State& s = *s_;
  const auto t0 = Clock::now();
  std::lock_guard<std::mutex> lock(s.mu);
  s.last_calls = s.calls;
  const bool counted = std::any_of(s.calls.begin(), s.calls.end(), [](int c) { return c > 0; });
  if (!s.calibrated && counted) {
    s.expected = s.calls;
    s.calibrated = true;
  }
  s.in_finalize = true;
  while (s.next_launch < static_cast<int>(s.buckets.size())) s.launch(s.next_launch++);
  s.in_finalize = false;
  std::exception_ptr error;
  double comm_s = 0;
  for (auto& b : s.buckets) {
    try {
      b.work->wait();
    } catch (...) {
      if (!error) error = std::current_exception();
    }
    comm_s += b.work->seconds();
  }
  s.stats.exposed_s = std::chrono::duration<double>(Clock::now() - t0).count();
  s.stats.comm_s = comm_s;
  s.stats.bytes = s.padded * s.flat.element_size();
  s.stats.buckets = static_cast<int>(s.buckets.size());
  s.stats.launched_in_backward = s.launched_in_backward;
  s.reset_step();
  if (error) std::rethrow_exception(error);
}

const at::Tensor& GradBuckets::flat_grad() const { return s_->flat; }
at::Tensor GradBuckets::shard_grad() const {
  return s_->opts.reduce_scatter ? s_->shard : s_->flat.narrow(0, s_->shard_begin, s_->shard_end - s_->shard_begin);
}
int64_t GradBuckets::numel() const { return s_->numel; }
int64_t GradBuckets::padded_numel() const { return s_->padded; }
int64_t GradBuckets::offset(size_t param) const { return s_->offsets.at(param); }
int64_t GradBuckets::shard_begin() const { return s_->shard_begin; }
int64_t GradBuckets::shard_end() const { return s_->shard_end; }
size_t GradBuckets::num_params() const { return s_->params.size(); }
int GradBuckets::num_buckets() const { return static_cast<int>(s_->buckets.size()); }
std::pair<int64_t, int64_t> GradBuckets::bucket_range(int bucket) const {
  const auto& b = s_->buckets.at(bucket);
  return {b.lo, b.hi};
}
bool GradBuckets::reduce_scatter() const { return s_->opts.reduce_scatter; }
const GradSyncStats& GradBuckets::last_stats() const { return s_->stats; }
std::vector<int> GradBuckets::last_hook_calls() const {
  std::lock_guard<std::mutex> lock(s_->mu);
  return s_->last_calls;
}
std::vector<int> GradBuckets::expected_hook_calls() const {
  std::lock_guard<std::mutex> lock(s_->mu);
  return s_->expected;
}

}  // namespace pc
