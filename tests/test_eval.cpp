// Evaluation metrics against hand-computed values (constructed embeddings, ties included), the
// retrieval pair reader, task specs, the results table and the SVG chart.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <random>
#include <regex>

#include "pyramidclip/data/image.h"
#include "pyramidclip/data/pair_loader.h"
#include "pyramidclip/data/tar.h"
#include "pyramidclip/eval/eval_task.h"
#include "pyramidclip/eval/retrieval.h"
#include "pyramidclip/eval/svg_plot.h"
#include "pyramidclip/eval/sweep.h"
#include "pyramidclip/eval/zero_shot.h"
#include "pyramidclip/util/errors.h"
#include "test_data_util.h"

namespace {

using pc::test::TempDir;
using pc::test::write_file;

at::Tensor rows(const std::vector<std::vector<float>>& v) {
  std::vector<at::Tensor> r;
  for (const auto& x : v) r.push_back(torch::tensor(x));
  return torch::stack(r);
}

// Class embeddings = identity, so an image's class scores are its own row (exact, no rounding).
// Hand count (rank = other classes scoring >= the true one; hit@k when rank < k):
//   img  label scores                       rank  top1 top5
//   0    0     .9 .1 0 0 0 0                0     y    y
//   1    1     .5 .4 .3 .2 .1 0             1     n    y
//   2    5     .5 .4 .3 .2 .1 0             5     n    n
//   3    2     .3 .3 .3 0 0 0   (3-way tie) 2     n    y
//   4    0     .2 .2 0 0 0 0    (tie)       1     n    y
//   5    1     0 1 0 0 0 0                  0     y    y
TEST(ZeroShot, TopKAndPerClassMatchHandCount) {
  pc::ZeroShotScorer s(torch::eye(6));
  s.add(rows({{.9f, .1f, 0, 0, 0, 0}, {.5f, .4f, .3f, .2f, .1f, 0}, {.5f, .4f, .3f, .2f, .1f, 0}}),
        torch::tensor({0, 1, 5}));
  s.add(rows({{.3f, .3f, .3f, 0, 0, 0}, {.2f, .2f, 0, 0, 0, 0}, {0, 1, 0, 0, 0, 0}}), torch::tensor({2, 0, 1}));
  const pc::ZeroShotResult r = s.result();
  EXPECT_EQ(r.images, 6);
  EXPECT_DOUBLE_EQ(r.top1, 2.0 / 6);
  EXPECT_DOUBLE_EQ(r.top5, 5.0 / 6);
  EXPECT_EQ(r.per_class_top1, (std::vector<double>{0.5, 0.5, 0.0, -1, -1, 0.0}));
  EXPECT_EQ(r.per_class_top5, (std::vector<double>{1.0, 1.0, 1.0, -1, -1, 0.0}));
  EXPECT_EQ(r.per_class_images, (std::vector<int64_t>{2, 2, 1, 0, 0, 1}));
}

// Image embeddings = identity, so sim[image][caption] = text_emb[caption][image]. Captions
// 0,1 belong to image 0, caption 2 to image 1, captions 3,4 to image 2.
//   sim     c0  c1  c2  c3  c4
//   img0    .1  .8  .9  0   .2   best own .8, wrong >= .8: c2        -> rank 1
//   img1    .5  .5  .5  .1  .1   own .5, wrong >= .5: c0, c1 (ties)  -> rank 2
//   img2    .3  .2  .1  0   .7   best own .7                         -> rank 0
// text->image ranks: c0 2 (img1 .5, img2 .3 >= .1), c1 0, c2 1 (img0 .9), c3 2 (img0 0 tie,
// img1 .1), c4 0.
TEST(Retrieval, RecallMatchesHandCountWithTiesAndSeveralCaptions) {
  const at::Tensor sim = rows({{.1f, .8f, .9f, 0, .2f}, {.5f, .5f, .5f, .1f, .1f}, {.3f, .2f, .1f, 0, .7f}});
  const std::vector<int64_t> owner = {0, 0, 1, 2, 2};
  const auto [i2t, t2i] = pc::retrieval_ranks(torch::eye(3), sim.t().contiguous(), torch::tensor(owner));
  EXPECT_TRUE(i2t.equal(torch::tensor({1, 2, 0}, torch::kLong))) << i2t;
  EXPECT_TRUE(t2i.equal(torch::tensor({2, 0, 1, 2, 0}, torch::kLong))) << t2i;
  const pc::RetrievalResult r = pc::score_retrieval(torch::eye(3), sim.t().contiguous(), owner);
  EXPECT_EQ(r.images, 3);
  EXPECT_EQ(r.captions, 5);
  EXPECT_DOUBLE_EQ(r.i2t_r1, 1.0 / 3);
  EXPECT_DOUBLE_EQ(r.i2t_r5, 1.0);
  EXPECT_DOUBLE_EQ(r.t2i_r1, 2.0 / 5);
  EXPECT_DOUBLE_EQ(r.t2i_r10, 1.0);
  EXPECT_NEAR(r.mean_recall, (1.0 / 3 + 1 + 1 + 0.4 + 1 + 1) / 6, 1e-12);
}

// Recall@5 vs @10: 12 images, one caption each; caption k's score for image j is 1 - |j - k|/12
// except that caption 0 prefers 7 wrong images (rank 7: miss @5, hit @10) and image 11's caption
// is beaten by 11 (rank 11: miss @10).
TEST(Retrieval, RecallAtFiveAndTenMatchHandCount) {
  const int n = 12;
  at::Tensor sim = torch::zeros({n, n});
  for (int j = 0; j < n; ++j)
    for (int k = 0; k < n; ++k) sim[j][k] = 1.0f - std::abs(j - k) / 12.0f;
  for (int j = 1; j <= 7; ++j) sim[j][0] = 2.0f;  // caption 0: 7 wrong images first
  for (int j = 0; j < 11; ++j) sim[j][11] = 3.0f; // caption 11: 11 wrong images first
  std::vector<int64_t> owner(n);
  for (int k = 0; k < n; ++k) owner[k] = k;
  const pc::RetrievalResult r = pc::score_retrieval(torch::eye(n), sim.t().contiguous(), owner);
  // text->image: caption 0 rank 7, caption 11 rank 11, the rest rank 0
  EXPECT_DOUBLE_EQ(r.t2i_r1, 10.0 / 12);
  EXPECT_DOUBLE_EQ(r.t2i_r5, 10.0 / 12);
  EXPECT_DOUBLE_EQ(r.t2i_r10, 11.0 / 12);
  // image->text: images 1..7 rank caption 0 (2.0) and caption 11 (3.0) above their own (1.0):
  // rank 2; images 0 and 8..10 only caption 11: rank 1; image 11: rank 0.
  EXPECT_DOUBLE_EQ(r.i2t_r1, 1.0 / 12);
  EXPECT_DOUBLE_EQ(r.i2t_r5, 1.0);
  EXPECT_DOUBLE_EQ(r.i2t_r10, 1.0);
}

// Chunked tensor ranks equal a plain loop over random embeddings with duplicate rows (ties).
TEST(Retrieval, ChunkedRanksEqualReferenceLoop) {
  torch::manual_seed(3);
  const int64_t n = 23, m = 41, d = 8;
  at::Tensor img = torch::nn::functional::normalize(torch::randn({n, d}),
                                                     torch::nn::functional::NormalizeFuncOptions().dim(1));
  at::Tensor txt = torch::nn::functional::normalize(torch::randn({m, d}),
                                                     torch::nn::functional::NormalizeFuncOptions().dim(1));
  txt[5] = txt[4];  // exact duplicates: ties
  img[9] = img[8];
  std::mt19937 rng(1);
  std::vector<int64_t> owner(m);
  for (int64_t k = 0; k < m; ++k) owner[k] = k < n ? k : static_cast<int64_t>(rng() % n);
  const auto [i2t, t2i] = pc::retrieval_ranks(img, txt, torch::tensor(owner), /*chunk=*/5);
  const at::Tensor sim = img.matmul(txt.t());
  const at::Tensor simt = txt.matmul(img.t());
  for (int64_t i = 0; i < n; ++i) {
    float best = -1e9f;
    for (int64_t k = 0; k < m; ++k)
      if (owner[k] == i) best = std::max(best, sim[i][k].item<float>());
    int64_t rank = 0;
    for (int64_t k = 0; k < m; ++k) rank += owner[k] != i && sim[i][k].item<float>() >= best;
    EXPECT_EQ(i2t[i].item<int64_t>(), rank) << "image " << i;
  }
  for (int64_t k = 0; k < m; ++k) {
    const float own = simt[k][owner[k]].item<float>();
    int64_t rank = 0;
    for (int64_t i = 0; i < n; ++i) rank += i != owner[k] && simt[k][i].item<float>() >= own;
    EXPECT_EQ(t2i[k].item<int64_t>(), rank) << "caption " << k;
  }
}

TEST(Retrieval, ImageWithoutCaptionIsAUserError) {
  EXPECT_THROW(pc::score_retrieval(torch::eye(3), torch::eye(3).slice(0, 0, 2), {0, 0}), pc::UserError);
}

pc::Image solid(uint8_t r, uint8_t g, uint8_t b) {
  pc::Image im;
  im.width = im.height = 16;
  for (int i = 0; i < 16 * 16; ++i) im.rgb.insert(im.rgb.end(), {r, g, b});
  return im;
}

struct Pass {
  int64_t images = 0;
  std::vector<at::Tensor> batches;
};
Pass drain(pc::PairLoader& l) {
  Pass p;
  pc::PairBatch b;
  while (l.next(b)) {
    p.images += b.size();
    p.batches.push_back(b.images);
  }
  return p;
}

// Rows with the same image are its captions; quoted commas; a missing file drops its rows.
TEST(PairLoader, CsvGroupsCaptionsByImageAndSkipsMissingFiles) {
  TempDir dir("pairs_csv");
  std::filesystem::create_directories(dir.path / "img");
  write_file(dir.str("img/a.png"), pc::encode_png(solid(255, 0, 0)));
  write_file(dir.str("img/b.jpg"), pc::encode_jpeg(solid(0, 0, 255)));
  write_file(dir.str("pairs.csv"),
             "image,caption\n"
             "img/a.png,a red square\n"
             "img/b.jpg,\"blue, square\"\n"
             "img/gone.png,never read\n"
             "img/a.png,red again\n"
             "./img/b.jpg,blue again\n");
  pc::PairLoaderOptions o;
  o.source = dir.str("pairs.csv");
  o.image_size = 8;
  o.batch_size = 1;
  pc::PairLoader l(o);
  const Pass p = drain(l);
  EXPECT_EQ(p.images, 2);
  EXPECT_EQ(l.num_images(), 2);
  EXPECT_EQ(l.captions(), (std::vector<std::string>{"a red square", "red again", "blue, square", "blue again"}));
  EXPECT_EQ(l.caption_image(), (std::vector<int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(l.stats().samples_skipped, 1);
  ASSERT_EQ(p.batches.size(), 2u);
  EXPECT_EQ(p.batches[0].sizes().vec(), (std::vector<int64_t>{1, 3, 8, 8}));
  EXPECT_GT(p.batches[0][0][0].mean().item<float>(), p.batches[0][0][2].mean().item<float>());  // red image first
}

TEST(PairLoader, JsonlAndTsvTables) {
  TempDir dir("pairs_jsonl");
  write_file(dir.str("a.png"), pc::encode_png(solid(10, 200, 10)));
  write_file(dir.str("p.jsonl"), "{\"image\": \"a.png\", \"caption\": \"green\"}\n\n{\"image\": \"a.png\", \"caption\": \"lime\"}\n");
  write_file(dir.str("p.tsv"), "caption\timage\ngreen\ta.png\n");
  for (const char* f : {"p.jsonl", "p.tsv"}) {
    pc::PairLoaderOptions o;
    o.source = dir.str(f);
    o.image_size = 8;
    pc::PairLoader l(o);
    EXPECT_EQ(drain(l).images, 1) << f;
    EXPECT_EQ(l.caption_image().size(), std::string(f) == "p.jsonl" ? 2u : 1u) << f;
  }
  write_file(dir.str("bad.csv"), "path,text\na.png,x\n");
  pc::PairLoaderOptions o;
  o.source = dir.str("bad.csv");
  try {
    pc::PairLoader l(o);
    FAIL() << "a header without image/caption must be a UserError";
  } catch (const pc::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("'image' and 'caption'"), std::string::npos) << e.what();
  }
}

// Shards: samples with identical image bytes are one image with several captions (a table
// packed by `data pack`); a sample without caption is skipped.
TEST(PairLoader, ShardsMergeIdenticalImages) {
  TempDir dir("pairs_tar");
  const std::string red = pc::encode_png(solid(255, 0, 0)), blue = pc::encode_png(solid(0, 0, 255));
  {
    pc::TarWriter w(dir.str("00000.tar"));
    w.add("000.png", red), w.add("000.txt", std::string("red one"));
    w.add("001.png", blue), w.add("001.txt", std::string("blue one"));
    w.add("002.png", red), w.add("002.txt", std::string("red two"));
    w.add("003.png", blue);  // no caption
    w.close();
  }
  pc::PairLoaderOptions o;
  o.source = dir.str("00000.tar");
  o.image_size = 8;
  pc::PairLoader l(o);
  EXPECT_EQ(drain(l).images, 2);
  EXPECT_EQ(l.captions(), (std::vector<std::string>{"red one", "blue one", "red two"}));
  EXPECT_EQ(l.caption_image(), (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(l.stats().samples_skipped, 1);
}

TEST(TaskSpec, ParsesOptionsAndBracePatterns) {
  const auto z = pc::parse_task_spec("zeroshot", "held=data/{00000..00003}.tar,classes=c.txt,templates=t.txt");
  EXPECT_EQ(z.name, "held");
  EXPECT_EQ(z.source, "data/{00000..00003}.tar");
  EXPECT_EQ(z.classes, "c.txt");
  EXPECT_EQ(z.templates, "t.txt");
  EXPECT_EQ(pc::parse_task_spec("retrieval", "coco=val/{a,b}.tar").source, "val/{a,b}.tar");
  EXPECT_EQ(pc::parse_task_spec("zeroshot", "x=dir").templates, "imagenet");
  for (const auto& [kind, text] : std::vector<std::pair<std::string, std::string>>{
           {"zeroshot", "noequals"}, {"zeroshot", "=src"}, {"zeroshot", "a=src,colour=red"},
           {"retrieval", "a=src,classes=c.txt"}, {"zeroshot", "bad/name=src"}, {"linear", "a=b"}})
    EXPECT_THROW(pc::parse_task_spec(kind, text), pc::UserError) << kind << " " << text;
  EXPECT_THROW(pc::check_unique_task_names({z, z}), pc::UserError);
}

TEST(TaskSpec, TaskFile) {
  TempDir dir("taskfile");
  write_file(dir.str("tasks.txt"), "# eval tasks\nzeroshot held=h,classes=c.txt\n\nretrieval coco=p.csv\n");
  const auto t = pc::read_task_file(dir.str("tasks.txt"));
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].kind, "zeroshot");
  EXPECT_EQ(t[1].name, "coco");
  write_file(dir.str("bad.txt"), "zeroshot held=h\nlinear x=y\n");
  try {
    pc::read_task_file(dir.str("bad.txt"));
    FAIL();
  } catch (const pc::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
}

nlohmann::json fake_result(int64_t step, double seen, const std::string& task, const std::string& kind,
                           nlohmann::json metrics) {
  return {{"step", step}, {"samples_seen", seen}, {"task", {{"name", task}, {"kind", kind}}}, {"metrics", metrics}};
}

TEST(SweepResults, CsvHasOneRowPerResultWithHeadlineColumnsFirst) {
  const std::vector<nlohmann::json> results = {
      fake_result(10, 160, "held", "zeroshot", {{"top1", 0.25}, {"top5", 0.5}, {"num_images", 4}, {"per_class_top1", {{"a", 1}}}}),
      fake_result(10, 160, "pairs", "retrieval", {{"i2t_r1", 0.1}, {"mean_recall", 0.3}, {"num_images", 3}}),
      fake_result(20, 320, "held", "zeroshot", {{"top1", 0.75}, {"top5", 1.0}, {"num_images", 4}})};
  EXPECT_EQ(pc::sweep_results_csv(results),
            "step,samples_seen,task,kind,top1,top5,i2t_r1,mean_recall,num_images\n"
            "10,160.0,held,zeroshot,0.25,0.5,,,4\n"
            "10,160.0,pairs,retrieval,,,0.1,0.3,3\n"
            "20,320.0,held,zeroshot,0.75,1.0,,,4\n");
}

TEST(Svg, NiceTicksAndOnePolylinePerSeries) {
  const std::vector<double> want = {0, 0.2, 0.4, 0.6, 0.8, 1.0}, got = pc::nice_ticks(0, 1);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12);
  EXPECT_EQ(pc::nice_ticks(0, 1000, 4), (std::vector<double>{0, 500, 1000}));  // step 250 -> 500 (1/2/5 steps)
  EXPECT_EQ(pc::nice_ticks(130, 870, 4), (std::vector<double>{0, 200, 400, 600, 800, 1000}));
  EXPECT_EQ(pc::tick_label(1500), "1.5k");
  EXPECT_EQ(pc::tick_label(2.5e6), "2.5M");
  EXPECT_EQ(pc::tick_label(0.25), "0.25");
  pc::PlotOptions o;
  o.title = "top-1 <zero-shot>";
  const std::string svg = pc::svg_line_chart({{"a", {{0, 0.1}, {100, 0.5}}}, {"b&c", {{50, 0.2}}}}, o);
  size_t polylines = 0;
  for (size_t p = svg.find("<polyline"); p != std::string::npos; p = svg.find("<polyline", p + 1)) ++polylines;
  EXPECT_EQ(polylines, 2u);
  EXPECT_NE(svg.find("top-1 &lt;zero-shot&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">b&amp;c</text>"), std::string::npos);
  EXPECT_EQ(svg.rfind("</svg>\n"), svg.size() - 7);
}

// The shard of a step depends on the step alone; shards partition any set of steps.
TEST(SweepShard, PartitionIsStableAndComplete) {
  EXPECT_EQ(pc::parse_shard("2/4"), (std::pair<int, int>{2, 4}));
  for (const char* bad : {"4/4", "-1/2", "1", "a/b", "1/0", "1/2x"}) EXPECT_THROW(pc::parse_shard(bad), pc::UserError) << bad;
  std::vector<int> count(3, 0);
  for (int64_t step = 100; step <= 3000; step += 100) {
    const int s = pc::sweep_shard_of(step, 3);
    ASSERT_GE(s, 0);
    ASSERT_LT(s, 3);
    EXPECT_EQ(s, pc::sweep_shard_of(step, 3));
    ++count[s];
  }
  for (int c : count) EXPECT_GT(c, 3);  // spread, not all on one shard
}

}  // namespace
