// `data pack` and `data check`: CSV/TSV/JSONL/ImageFolder -> shards -> check, with planted bad
// rows and damaged shards; byte-identical round trips, determinism, and the CLI contract.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pyramidclip/data/check.h"
#include "pyramidclip/data/image.h"
#include "pyramidclip/data/npy.h"
#include "pyramidclip/data/pack.h"
#include "pyramidclip/data/sample_count.h"
#include "pyramidclip/data/tar.h"
#include "pyramidclip/util/errors.h"
#include "test_data_util.h"
#include "test_process.h"

namespace fs = std::filesystem;

namespace {

using pc::test::read_file;
using pc::test::TempDir;
using pc::test::write_file;

pc::Image pattern_image(int w, int h, int seed) {
  pc::Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  uint32_t s = 2166136261u ^ static_cast<uint32_t>(seed);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      s = s * 1664525u + 1013904223u;
      uint8_t* p = img.pixel(x, y);
      p[0] = static_cast<uint8_t>(x * 255 / w);
      p[1] = static_cast<uint8_t>(y * 255 / h);
      p[2] = static_cast<uint8_t>((s >> 24) ^ static_cast<uint32_t>(seed * 37));
    }
  return img;
}

std::string roi_npy(int64_t rows, int64_t cols, pc::NpyDtype dtype) {
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 97) / 97.0f;
  return pc::encode_npy(v.data(), rows, cols, dtype);
}

// One row of a caption table.
struct Spec {
  std::string image, caption, summary, tags, roi;
  const char* skip = nullptr;  // expected skip reason; nullptr: written
  std::string member_ext;      // expected image member extension
};

// Source files under dir/src and the rows that name them (paths relative to dir).
std::vector<Spec> make_sources(const std::string& dir) {
  fs::create_directories(dir + "/src");
  auto put = [&](const std::string& rel, const std::string& bytes) { write_file(dir + "/" + rel, bytes); };
  const std::string big = pc::encode_jpeg(pattern_image(640, 480, 99), 92);
  put("src/good0.jpg", pc::encode_jpeg(pattern_image(48, 32, 0)));
  put("src/good1.png", pc::encode_png(pattern_image(40, 40, 1)));
  std::vector<uint8_t> gray(64 * 48);
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<uint8_t>(i * 7);
  put("src/gray.jpg", pc::encode_jpeg_gray(gray, 64, 48));
  put("src/big.jpeg", big);
  put("src/empty.jpg", "");
  const std::string small = pc::encode_jpeg(pattern_image(64, 64, 5));
  put("src/trunc.jpg", small.substr(0, small.size() / 2));
  put("src/trunc_big.jpg", big.substr(0, big.size() * 2 / 3));
  put("src/roi16.npy", roi_npy(3, 2052, pc::NpyDtype::kFloat16));
  put("src/roi32.npy", roi_npy(2, 2052, pc::NpyDtype::kFloat32));
  put("src/roi_bad_shape.npy", roi_npy(3, 10, pc::NpyDtype::kFloat16));
  put("src/roi_garbage.npy", "not a numpy file at all");
  for (int i = 0; i < 7; ++i) put("src/more" + std::to_string(i) + ".jpg", pc::encode_jpeg(pattern_image(32 + i, 24, 10 + i)));

  std::vector<Spec> rows = {
      {"src/good0.jpg", "a cat, sitting\non a \"red\" mat", "a cat", "cat: grey; mat: red", "src/roi16.npy", nullptr, "jpg"},
      {"src/good1.png", u8"猫がいる — café ☕ naïve", "", u8"tags, ünïcode", "", nullptr, "png"},
      {"src/gray.jpg", "gray, with commas, many", u8"résumé", "", "src/roi32.npy", nullptr, "jpg"},
      {"src/nope.jpg", "missing file", "", "", "", "missing image", ""},
      {"src/empty.jpg", "zero-byte image", "", "", "", "corrupt image", ""},
      {"src/trunc.jpg", "truncated jpeg", "", "", "", "corrupt image", ""},
      {"src/big.jpeg", "a big one", "big summary", "big tags", "", nullptr, "jpg"},
      {"src/good0.jpg", "bad roi shape", "", "", "src/roi_bad_shape.npy", "bad roi", ""},
      {"src/good0.jpg", "  ", "", "", "", "empty caption", ""},
      {"src/trunc_big.jpg", "truncated big jpeg", "", "", "", "corrupt image", ""},
      {"src/good1.png", "garbage roi", "", "", "src/roi_garbage.npy", "bad roi", ""},
      {"src/good0.jpg", "roi file missing", "", "", "src/no_such.npy", "bad roi", ""},
  };
  for (int i = 0; i < 7; ++i)
    rows.push_back({"src/more" + std::to_string(i) + ".jpg", "more number " + std::to_string(i), i % 2 ? "s" : "",
                    "", "", nullptr, "jpg"});
  return rows;
}

std::string csv_field(const std::string& s) {
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

void write_csv(const std::string& path, const std::vector<Spec>& rows) {
  std::string t = "image,caption,summary,tags,roi\r\n";
  for (const auto& r : rows)  // quote only where needed, as most writers do
    t += r.image + "," + csv_field(r.caption) + "," + (r.summary.empty() ? "" : csv_field(r.summary)) + "," +
         csv_field(r.tags) + "," + r.roi + "\r\n";
  write_file(path, t);
}

void write_tsv(const std::string& path, const std::vector<Spec>& rows, const std::string& image_col) {
  std::string t = "caption\t" + image_col + "\tsummary\ttags\troi\n";
  for (const auto& r : rows) t += r.caption + "\t" + r.image + "\t" + r.summary + "\t" + r.tags + "\t" + r.roi + "\n";
  write_file(path, t);
}

void write_jsonl(const std::string& path, const std::vector<Spec>& rows) {
  std::string t;
  for (const auto& r : rows) {
    nlohmann::json j = {{"image", r.image}, {"caption", r.caption}};
    if (!r.summary.empty()) j["summary"] = r.summary;
    if (!r.tags.empty()) j["tags"] = r.tags;
    if (!r.roi.empty()) j["roi"] = r.roi;
    t += j.dump() + "\n";
  }
  write_file(path, t);
}

std::vector<pc::RawSample> read_all(const std::vector<std::string>& shards) {
  std::vector<pc::RawSample> out;
  for (const auto& s : shards) {
    pc::SampleReader r(s);
    pc::RawSample x;
    while (r.next(x)) out.push_back(x);
    EXPECT_FALSE(r.damaged()) << s << ": " << r.error();
  }
  return out;
}

// Every written row reads back byte-identical, in order, under keys 000000000, 000000001, ...
void expect_round_trip(const std::string& dir, const std::vector<Spec>& rows, const std::vector<std::string>& shards) {
  const auto samples = read_all(shards);
  size_t k = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const Spec& r = rows[i];
    if (r.skip) continue;
    ASSERT_LT(k, samples.size());
    const pc::RawSample& s = samples[k];
    char key[16];
    std::snprintf(key, sizeof key, "%09zu", k);
    EXPECT_EQ(s.key, key);
    ASSERT_TRUE(s.has(r.member_ext)) << "row " << i + 1;
    EXPECT_EQ(s.members.at(r.member_ext), read_file(dir + "/" + r.image)) << "row " << i + 1;
    EXPECT_EQ(s.members.at("txt"), r.caption);
    EXPECT_EQ(s.has("summary.txt"), !r.summary.empty());
    if (!r.summary.empty()) {
      EXPECT_EQ(s.members.at("summary.txt"), r.summary);
    }
    EXPECT_EQ(s.has("tags.txt"), !r.tags.empty());
    if (!r.tags.empty()) {
      EXPECT_EQ(s.members.at("tags.txt"), r.tags);
    }
    EXPECT_EQ(s.has("roi.npy"), !r.roi.empty());
    if (!r.roi.empty()) {
      EXPECT_EQ(s.members.at("roi.npy"), read_file(dir + "/" + r.roi));
    }
    ASSERT_TRUE(s.has("json"));
    const auto meta = nlohmann::json::parse(s.members.at("json"));
    EXPECT_EQ(meta.at("row").get<int64_t>(), static_cast<int64_t>(i + 1));
    EXPECT_EQ(meta.at("source").get<std::string>(), r.image);
    EXPECT_EQ(s.members.size(), 3u + !r.summary.empty() + !r.tags.empty() + !r.roi.empty());
    ++k;
  }
  EXPECT_EQ(k, samples.size());
}

struct Expect {
  int64_t written = 0, skipped = 0, no_summary = 0, no_tags = 0, no_roi = 0;
  std::map<std::string, int64_t> reasons;
};

Expect expected(const std::vector<Spec>& rows) {
  Expect e;
  for (const auto& r : rows) {
    if (r.skip) {
      ++e.skipped;
      ++e.reasons[r.skip];
      continue;
    }
    ++e.written;
    e.no_summary += r.summary.empty();
    e.no_tags += r.tags.empty();
    e.no_roi += r.roi.empty();
  }
  return e;
}

void expect_report(const pc::PackReport& rep, const std::vector<Spec>& rows, int64_t per_shard) {
  const Expect e = expected(rows);
  EXPECT_EQ(rep.rows, static_cast<int64_t>(rows.size()));
  EXPECT_EQ(rep.written, e.written);
  EXPECT_EQ(rep.skipped, e.skipped);
  EXPECT_EQ(rep.skip_reasons, e.reasons);
  EXPECT_EQ(static_cast<int64_t>(rep.shards.size()), (e.written + per_shard - 1) / per_shard);
}

void expect_clean_check(const std::string& spec, const std::vector<Spec>& rows, size_t shards) {
  const Expect e = expected(rows);
  pc::CheckOptions co;
  co.shards = spec;
  const pc::CheckReport c = pc::check_shards(co);
  EXPECT_TRUE(c.ok()) << pc::check_table(c);
  EXPECT_EQ(c.shards.size(), shards);
  EXPECT_EQ(c.total.samples, e.written);
  EXPECT_EQ(c.total.images_ok, e.written);
  EXPECT_EQ(c.total.corrupt_images, 0);
  EXPECT_EQ(c.total.missing_image, 0);
  EXPECT_EQ(c.total.missing_caption, 0);
  EXPECT_EQ(c.total.missing_summary, e.no_summary);
  EXPECT_EQ(c.total.missing_tags, e.no_tags);
  EXPECT_EQ(c.total.missing_roi, e.no_roi);
  EXPECT_EQ(c.total.bad_roi, 0);
  EXPECT_EQ(c.total.bad_samples, 0);
  EXPECT_EQ(c.total.damaged_shards, 0);
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(DataPack, CsvRoundTripAndCheck) {
  TempDir tmp("pack_csv");
  const auto rows = make_sources(tmp.str());
  write_csv(tmp.str("in.csv"), rows);
  pc::PackOptions o;
  o.input = tmp.str("in.csv");
  o.out_dir = tmp.str("out");
  o.samples_per_shard = 4;
  const pc::PackReport rep = pc::pack_dataset(o);
  EXPECT_EQ(rep.format, "csv");
  EXPECT_EQ(rep.written, 11);
  EXPECT_EQ(rep.skipped, 8);
  expect_report(rep, rows, 4);
  ASSERT_EQ(rep.shards.size(), 3u);
  EXPECT_EQ(fs::path(rep.shards[0]).filename(), "00000.tar");
  EXPECT_EQ(fs::path(rep.shards[2]).filename(), "00002.tar");
  EXPECT_EQ(lines_of(tmp.str("out/shards.txt")), (std::vector<std::string>{"00000.tar", "00001.tar", "00002.tar"}));
  expect_round_trip(tmp.str(), rows, rep.shards);
  // the last shard holds the remainder
  EXPECT_EQ(read_all({rep.shards[2]}).size(), 3u);
  // meta.json gives the loader the counts without a scan; a changed shard falls back to scanning
  ASSERT_TRUE(fs::exists(tmp.str("out/meta.json")));
  EXPECT_EQ(pc::shard_sample_counts(rep.shards), (std::vector<int64_t>{4, 4, 3}));
  const nlohmann::json meta = nlohmann::json::parse(pc::test::read_file(tmp.str("out/meta.json")));
  EXPECT_EQ(meta["shard_samples"]["00001.tar"]["samples"], 4);
  EXPECT_EQ(meta["shard_samples"]["00001.tar"]["bytes"], fs::file_size(rep.shards[1]));
  expect_clean_check(tmp.str("out"), rows, 3);
  expect_clean_check(tmp.str("out/shards.txt"), rows, 3);
  expect_clean_check(tmp.str("out/{00000..00002}.tar"), rows, 3);
  const std::string summary = pc::pack_summary(rep, o.out_dir);
  EXPECT_NE(summary.find("11 samples written"), std::string::npos) << summary;
  EXPECT_NE(summary.find("8 of 19 rows skipped"), std::string::npos) << summary;
  EXPECT_NE(summary.find("3 corrupt image"), std::string::npos) << summary;
}

TEST(DataPack, TsvWithColumnsAndBaseDir) {
  TempDir tmp("pack_tsv");
  auto rows = make_sources(tmp.str());
  for (auto& r : rows) std::replace(r.caption.begin(), r.caption.end(), '\n', ' ');  // TSV fields hold no newline
  fs::create_directories(tmp.str("tables"));
  write_tsv(tmp.str("tables/in.tsv"), rows, "filepath");
  pc::PackOptions o;
  o.input = tmp.str("tables/in.tsv");
  o.out_dir = tmp.str("out");
  o.samples_per_shard = 5;
  o.prefix = "cc-";
  o.base_dir = tmp.str();
  o.columns = pc::parse_pack_columns("image=filepath");
  o.jobs = 3;
  const pc::PackReport rep = pc::pack_dataset(o);
  EXPECT_EQ(rep.format, "tsv");
  expect_report(rep, rows, 5);
  ASSERT_EQ(rep.shards.size(), 3u);
  EXPECT_EQ(fs::path(rep.shards[1]).filename(), "cc-00001.tar");
  expect_round_trip(tmp.str(), rows, rep.shards);
  expect_clean_check(tmp.str("out/shards.txt"), rows, 3);

  // without --base-dir, paths resolve against tables/: every image is missing -> nothing usable
  pc::PackOptions o2 = o;
  o2.base_dir.clear();
  o2.out_dir = tmp.str("out2");
  EXPECT_THROW(pc::pack_dataset(o2), pc::UserError);
}

TEST(DataPack, JsonlRoundTripAndDeterminism) {
  TempDir tmp("pack_jsonl");
  const auto rows = make_sources(tmp.str());
  write_jsonl(tmp.str("in.jsonl"), rows);
  // two more rows that are bad as rows: not JSON, not an object
  write_file(tmp.str("in.jsonl"), read_file(tmp.str("in.jsonl")) + "\n{not json\n[1, 2]\n");
  pc::PackOptions o;
  o.input = tmp.str("in.jsonl");
  o.out_dir = tmp.str("out1");
  o.samples_per_shard = 2;
  const pc::PackReport a = pc::pack_dataset(o);
  EXPECT_EQ(a.format, "jsonl");
  EXPECT_EQ(a.rows, static_cast<int64_t>(rows.size()) + 2);
  EXPECT_EQ(a.written, 11);
  EXPECT_EQ(a.skip_reasons.at("bad row"), 2);
  EXPECT_EQ(a.shards.size(), 6u);
  expect_round_trip(tmp.str(), rows, a.shards);
  expect_clean_check(tmp.str("out1"), rows, 6);

  // the same input again, with 4 threads: byte-identical shards
  o.out_dir = tmp.str("out2");
  o.jobs = 4;
  const pc::PackReport b = pc::pack_dataset(o);
  ASSERT_EQ(a.shards.size(), b.shards.size());
  for (size_t i = 0; i < a.shards.size(); ++i) {
    const std::string x = read_file(a.shards[i]), y = read_file(b.shards[i]);
    EXPECT_FALSE(x.empty());
    EXPECT_EQ(x, y) << a.shards[i] << " vs " << b.shards[i];
  }

  // existing shards are kept unless asked; --overwrite removes the ones a smaller pack no longer writes
  o.out_dir = tmp.str("out1");
  try {
    pc::pack_dataset(o);
    ADD_FAILURE() << "overwrote shards without --overwrite";
  } catch (const pc::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--overwrite"), std::string::npos) << e.what();
  }
  o.overwrite = true;
  o.samples_per_shard = 100;
  const pc::PackReport c = pc::pack_dataset(o);
  EXPECT_EQ(c.shards.size(), 1u);
  EXPECT_FALSE(fs::exists(tmp.str("out1/00001.tar")));
  expect_clean_check(tmp.str("out1"), rows, 1);
}

TEST(DataPack, ImageFolder) {
  TempDir tmp("pack_folder");
  const std::string root = tmp.str("imgs");
  fs::create_directories(root + "/dog/nested");
  fs::create_directories(root + "/cats_big");
  fs::create_directories(root + "/zebra_fish");
  write_file(root + "/dog/a.jpg", pc::encode_jpeg(pattern_image(30, 20, 1)));
  write_file(root + "/dog/b.jpg", "corrupt bytes");
  write_file(root + "/dog/nested/c.PNG", pc::encode_png(pattern_image(20, 20, 2)));
  write_file(root + "/dog/notes.txt", "not an image");
  write_file(root + "/cats_big/x.jpeg", pc::encode_jpeg(pattern_image(25, 25, 3)));
  write_file(root + "/zebra_fish/z.jpg", pc::encode_jpeg(pattern_image(22, 26, 4)));
  pc::PackOptions o;
  o.input = root;
  o.out_dir = tmp.str("out");
  o.samples_per_shard = 3;
  const pc::PackReport rep = pc::pack_dataset(o);
  EXPECT_EQ(rep.format, "imagefolder");
  EXPECT_EQ(rep.classes, (std::vector<std::string>{"cats_big", "dog", "zebra_fish"}));
  EXPECT_EQ(lines_of(tmp.str("out/classes.txt")), rep.classes);
  EXPECT_EQ(rep.rows, 5);
  EXPECT_EQ(rep.written, 4);
  EXPECT_EQ(rep.skip_reasons, (std::map<std::string, int64_t>{{"corrupt image", 1}}));
  ASSERT_EQ(rep.shards.size(), 2u);
  const auto samples = read_all(rep.shards);
  ASSERT_EQ(samples.size(), 4u);
  struct Want { const char* file; const char* ext; int label; const char* cls; const char* caption; };
  const Want want[] = {{"cats_big/x.jpeg", "jpg", 0, "cats_big", "a photo of a cats big."},
                       {"dog/a.jpg", "jpg", 1, "dog", "a photo of a dog."},
                       {"dog/nested/c.PNG", "png", 1, "dog", "a photo of a dog."},
                       {"zebra_fish/z.jpg", "jpg", 2, "zebra_fish", "a photo of a zebra fish."}};
  for (size_t i = 0; i < 4; ++i) {
    const auto& s = samples[i];
    ASSERT_TRUE(s.has(want[i].ext)) << i;
    EXPECT_EQ(s.members.at(want[i].ext), read_file(root + "/" + want[i].file));
    EXPECT_EQ(s.members.at("txt"), want[i].caption);
    EXPECT_EQ(s.members.at("cls"), std::to_string(want[i].label));
    const auto meta = nlohmann::json::parse(s.members.at("json"));
    EXPECT_EQ(meta.at("label").get<int>(), want[i].label);
    EXPECT_EQ(meta.at("class").get<std::string>(), want[i].cls);
    EXPECT_EQ(meta.at("source").get<std::string>(), want[i].file);
  }
  pc::CheckOptions co;
  co.shards = tmp.str("out");
  const pc::CheckReport c = pc::check_shards(co);
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.total.samples, 4);
  EXPECT_EQ(c.total.missing_summary, 4);
  EXPECT_EQ(c.total.missing_tags, 4);
  EXPECT_EQ(c.total.missing_roi, 4);
}

TEST(DataPack, CsvBomQuotedHeaderAndBadRows) {
  TempDir tmp("pack_bom");
  write_file(tmp.str("a.jpg"), pc::encode_jpeg(pattern_image(20, 20, 1)));
  // Excel-style: BOM, quoted header, CRLF; then a row with too few fields, one with too many,
  // a blank line, and a good row with an embedded "" quote
  write_file(tmp.str("in.csv"), "\xEF\xBB\xBF\"image\",\"Caption\"\r\na.jpg\r\na.jpg,x,y\r\n\r\na.jpg,\"say \"\"hi\"\"\"\r\n");
  pc::PackOptions o;
  o.input = tmp.str("in.csv");
  o.out_dir = tmp.str("out");
  const pc::PackReport rep = pc::pack_dataset(o);  // "Caption" matches caption case-insensitively
  EXPECT_EQ(rep.rows, 3);
  EXPECT_EQ(rep.written, 1);
  EXPECT_EQ(rep.skip_reasons, (std::map<std::string, int64_t>{{"bad row", 2}}));
  const auto s = read_all(rep.shards);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].members.at("txt"), "say \"hi\"");
  const auto meta = nlohmann::json::parse(s[0].members.at("json"));
  EXPECT_EQ(meta.at("row").get<int>(), 3);
  EXPECT_EQ(meta.at("line").get<int>(), 5);
}

TEST(DataPack, UsageErrors) {
  TempDir tmp("pack_usage");
  pc::PackOptions o;
  o.out_dir = tmp.str("out");
  auto expect_user_error = [&](const pc::PackOptions& opt, const std::string& mention) {
    try {
      pc::pack_dataset(opt);
      ADD_FAILURE() << "no error; expected one mentioning " << mention;
    } catch (const pc::UserError& e) {
      EXPECT_NE(std::string(e.what()).find(mention), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  };
  o.input = tmp.str("missing.csv");
  expect_user_error(o, "missing.csv");
  write_file(tmp.str("in.txt"), "image,caption\n");
  o.input = tmp.str("in.txt");
  expect_user_error(o, "--format");
  o.format = "parquet";
  expect_user_error(o, "parquet");
  o.format = "auto";
  write_file(tmp.str("nocap.csv"), "image,text\na.jpg,hello\n");
  o.input = tmp.str("nocap.csv");
  expect_user_error(o, "'caption'");
  o.columns = pc::parse_pack_columns("caption=text,summary=abstract");
  expect_user_error(o, "'abstract'");
  o.columns.clear();
  write_file(tmp.str("quote.csv"), "image,caption\na.jpg,\"never closed\nb.jpg,x\n");
  o.input = tmp.str("quote.csv");
  expect_user_error(o, "line 2");
  write_file(tmp.str("header_only.csv"), "image,caption\n");
  o.input = tmp.str("header_only.csv");
  expect_user_error(o, "no data rows");
  write_file(tmp.str("keys.jsonl"), "{\"url\": \"a.jpg\", \"caption\": \"x\"}\n");
  o.input = tmp.str("keys.jsonl");
  expect_user_error(o, "\"image\"");
  EXPECT_THROW(pc::parse_pack_columns("picture=x"), pc::UserError);
  EXPECT_THROW(pc::parse_pack_columns("image"), pc::UserError);
  EXPECT_EQ(pc::parse_pack_columns(" image = url , caption=text "),
            (std::map<std::string, std::string>{{"image", "url"}, {"caption", "text"}}));
  EXPECT_FALSE(fs::exists(tmp.str("out/00000.tar")));
}

// Shards with planted problems: a corrupt image, a missing caption, a bad .npy, a sample without
// an image, a truncated tar and a zero-byte "tar".
struct BadShards {
  TempDir tmp{"check_bad"};
  BadShards() {
    const std::string jpg = pc::encode_jpeg(pattern_image(32, 32, 7));
    const std::string roi = roi_npy(2, 2052, pc::NpyDtype::kFloat16);
    {
      pc::TarWriter w(tmp.str("d/00000.tar"));
      w.add("000000000.jpg", jpg);  // good, full
      w.add("000000000.txt", "ok");
      w.add("000000000.summary.txt", "s");
      w.add("000000000.tags.txt", "t");
      w.add("000000000.roi.npy", roi);
      w.add("000000001.jpg", jpg.substr(0, 40) + std::string(200, 'x'));  // corrupt image
      w.add("000000001.txt", "corrupt image");
      w.add("000000002.png", pc::encode_png(pattern_image(8, 8, 1)));  // no caption
      w.add("000000003.jpg", jpg);                                  // bad npy
      w.add("000000003.txt", "bad roi");
      w.add("000000003.roi.npy", roi_npy(2, 7, pc::NpyDtype::kFloat32));
      w.add("000000004.txt", "no image at all");
      w.add("000000005.jpg", jpg);  // empty caption text
      w.add("000000005.txt", " \n");
      w.close();
    }
    {
      // 3 samples of jpg + txt; cut inside the third sample's image data
      pc::TarWriter w(tmp.str("d/00001.tar"));
      for (int i = 0; i < 3; ++i) {
        w.add("00000000" + std::to_string(i) + ".jpg", jpg);
        w.add("00000000" + std::to_string(i) + ".txt", "caption " + std::to_string(i));
      }
      w.close();
      const size_t block = 512, padded_jpg = (jpg.size() + block - 1) / block * block;
      const size_t cut = 2 * (block + padded_jpg + 2 * block) + block + jpg.size() / 2;
      const std::string whole = read_file(tmp.str("d/00001.tar"));
      EXPECT_GT(whole.size(), cut);
      write_file(tmp.str("d/00001.tar"), whole.substr(0, cut));
    }
    write_file(tmp.str("d/00002.tar"), "");
  }
};

TEST(DataCheck, ReportsPlantedProblems) {
  BadShards b;
  pc::CheckOptions co;
  co.shards = b.tmp.str("d");
  co.jobs = 2;
  const pc::CheckReport r = pc::check_shards(co);
  ASSERT_EQ(r.shards.size(), 3u);
  const pc::ShardCheck& s0 = r.shards[0];
  EXPECT_EQ(s0.samples, 6);
  EXPECT_EQ(s0.images_ok, 4);
  EXPECT_EQ(s0.corrupt_images, 1);
  EXPECT_EQ(s0.missing_image, 1);
  EXPECT_EQ(s0.missing_caption, 2);
  EXPECT_EQ(s0.missing_summary, 5);
  EXPECT_EQ(s0.missing_tags, 5);
  EXPECT_EQ(s0.missing_roi, 4);
  EXPECT_EQ(s0.bad_roi, 1);
  EXPECT_EQ(s0.bad_samples, 5);
  EXPECT_EQ(s0.damaged_shards, 0);
  const pc::ShardCheck& s1 = r.shards[1];
  EXPECT_EQ(s1.samples, 2);  // the partial third sample is dropped
  EXPECT_EQ(s1.images_ok, 2);
  EXPECT_EQ(s1.bad_samples, 0);
  EXPECT_EQ(s1.damaged_shards, 1);
  EXPECT_FALSE(s1.error.empty());
  EXPECT_EQ(r.shards[2].damaged_shards, 1);
  EXPECT_EQ(r.shards[2].samples, 0);
  EXPECT_EQ(r.total.samples, 8);
  EXPECT_EQ(r.total.bad_samples, 5);
  EXPECT_EQ(r.total.damaged_shards, 2);
  EXPECT_FALSE(r.ok());
  const std::string table = pc::check_table(r);
  EXPECT_NE(table.find("DAMAGED"), std::string::npos) << table;
  EXPECT_NE(table.find("total: 3 shards, 2 damaged"), std::string::npos) << table;

  // without decoding, the corrupt image goes unnoticed; the rest is the same
  co.decode = false;
  const pc::CheckReport nd = pc::check_shards(co);
  EXPECT_EQ(nd.shards[0].images_ok, 5);
  EXPECT_EQ(nd.shards[0].corrupt_images, 0);
  EXPECT_EQ(nd.shards[0].bad_samples, 4);
}

// ---------------------------------------------------------------- CLI

struct CliResult {
  int code;
  std::string out, err;
};

CliResult run_cli(const std::string& args, const std::string& dir) {
  const std::string out = dir + "/stdout", err = dir + "/stderr";
  const int code = pc::test::exit_code_of(std::string(PC_BINARY) + " " + args + " >" + out + " 2>" + err);
  return {code, read_file(out), read_file(err)};
}

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(DataPackCli, PackThenCheck) {
  TempDir tmp("pack_cli");
  const auto rows = make_sources(tmp.str());
  write_csv(tmp.str("in.csv"), rows);
  CliResult p = run_cli("data pack --input " + tmp.str("in.csv") + " --output " + tmp.str("out") +
                  " --samples-per-shard 4 --jobs 2",
              tmp.str());
  ASSERT_EQ(p.code, 0) << p.out << p.err;
  EXPECT_NE(p.out.find("data pack: 11 samples written to " + tmp.str("out") + " in 3 shards"), std::string::npos)
      << p.out;
  CliResult c = run_cli("data check " + tmp.str("out") + " --json " + tmp.str("check.json"), tmp.str());
  EXPECT_EQ(c.code, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("total: 3 shards, 0 damaged -- OK"), std::string::npos) << c.out;
  const auto j = nlohmann::json::parse(read_file(tmp.str("check.json")));
  EXPECT_TRUE(j.at("ok").get<bool>());
  EXPECT_EQ(j.at("total").at("samples").get<int>(), 11);
  EXPECT_EQ(j.at("shards").size(), 3u);

  // packing again into the same directory is refused
  CliResult again = run_cli("data pack --input " + tmp.str("in.csv") + " --output " + tmp.str("out"), tmp.str());
  EXPECT_EQ(again.code, 2);
  EXPECT_EQ(count_lines(again.err), 1) << again.err;
  EXPECT_NE(again.err.find("--overwrite"), std::string::npos) << again.err;
}

TEST(DataPackCli, CheckFindsDamageExitOne) {
  BadShards b;
  CliResult c = run_cli("data check --shards '" + b.tmp.str("d/{00000..00002}.tar") + "' --json " + b.tmp.str("r.json"),
              b.tmp.str());
  EXPECT_EQ(c.code, 1) << c.out << c.err;
  EXPECT_NE(c.out.find("DAMAGED"), std::string::npos) << c.out;
  const auto j = nlohmann::json::parse(read_file(b.tmp.str("r.json")));
  EXPECT_FALSE(j.at("ok").get<bool>());
  EXPECT_EQ(j.at("total").at("bad_samples").get<int>(), 5);
  EXPECT_EQ(j.at("total").at("damaged_shards").get<int>(), 2);
  EXPECT_EQ(j.at("shards").at(0).at("corrupt_images").get<int>(), 1);
  EXPECT_TRUE(j.at("shards").at(1).contains("error"));
}

TEST(DataPackCli, UsageErrorsAreOneLineExitTwo) {
  TempDir tmp("pack_cli_err");
  write_file(tmp.str("nocap.csv"), "image,text\na.jpg,hello\n");
  const std::pair<std::string, std::string> cases[] = {
      {"data pack --input /nonexistent/in.csv --output " + tmp.str("o"), "/nonexistent/in.csv"},
      {"data pack --output " + tmp.str("o"), "input"},
      {"data pack --input " + tmp.str("nocap.csv") + " --output " + tmp.str("o"), "'caption'"},
      {"data pack --input " + tmp.str("nocap.csv") + " --output " + tmp.str("o") + " --format xml", "xml"},
      {"data pack --input " + tmp.str("nocap.csv") + " --output " + tmp.str("o") + " --columns pic=x", "pic"},
      {"data pack --input " + tmp.str("nocap.csv") + " --output " + tmp.str("o") + " --samples-per-shard 0",
       "samples-per-shard"},
      {"data check '/nonexistent/{00000..00003}.tar'", "/nonexistent/00000.tar"},
      {"data check", "shards"},
      {"data check " + tmp.str() + " --decode maybe", "decode"},
  };
  for (const auto& [args, mention] : cases) {
    CliResult r = run_cli(args, tmp.str());
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(mention), std::string::npos) << args << "\n" << r.err;
  }
  for (const char* help : {"data pack --help", "data check --help"}) {
    CliResult r = run_cli(help, tmp.str());
    EXPECT_EQ(r.code, 0) << help;
    EXPECT_NE(r.out.find("usage: pyramidclip"), std::string::npos) << help;
  }
  EXPECT_NE(run_cli("data check --help", tmp.str()).out.find("Exit code"), std::string::npos);
}

}  // namespace
