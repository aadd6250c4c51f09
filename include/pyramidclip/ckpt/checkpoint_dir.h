#pragma once
// The checkpoint directory protocol (DESIGN §3):
//   <run>/checkpoints/step-000012000/{model.h5, optim-RRRRR-of-NNNNN.h5, state.h5, MANIFEST.json}
//   <run>/checkpoints/latest   name of the newest published step, replaced atomically
// Ranks write into step-N.tmp/; rank 0 writes MANIFEST.json last (sizes and XXH3 checksums of
// every file), renames the directory and updates `latest`. A directory is valid only when its
// manifest parses and every listed file has the listed size and checksum: a crash at any moment
// leaves at most a .tmp directory or an unpublished step, never a valid-looking partial one.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pc {

constexpr int kCheckpointFormat = 1;

std::string step_dir_name(int64_t step);                     // "step-000012000"
std::string optim_file_name(int rank, int world_size);       // "optim-00003-of-00008.h5"

struct ManifestFile {
  std::string name;
  int64_t bytes = 0;
  std::string xxh3;
};
struct Manifest {
  int format = kCheckpointFormat;
  int64_t step = 0;
  int world_size = 0;
  double samples_seen = 0;
  std::string version;  // pyramidclip version that wrote it
  std::vector<ManifestFile> files;
};

// Digests every regular file in `dir` (except the manifest) into a manifest and writes
// MANIFEST.json atomically.
Manifest write_manifest(const std::string& dir, int64_t step, int world_size, double samples_seen);
// The same from digests computed elsewhere (each rank digests its own files in the background).
Manifest write_manifest(const std::string& dir, int64_t step, int world_size, double samples_seen,
                        std::vector<ManifestFile> files);
// Digests of the named files in dir, as a small JSON sidecar ("digest-rank-RRRRR.json", written
// atomically) that write_manifest's caller collects; and reading one back.
void write_digest_sidecar(const std::string& dir, int rank, const std::vector<std::string>& names);
std::vector<ManifestFile> read_digest_sidecar(const std::string& dir, int rank);
std::string digest_sidecar_name(int rank);
// UserError naming the file when MANIFEST.json is missing or malformed.
Manifest read_manifest(const std::string& dir);

// "" when `dir` is a valid checkpoint, else one line saying what is wrong (missing manifest,
// missing file, size or checksum mismatch, missing optimizer shard). `checksums` false checks
// sizes only (cheap).
std::string verify_checkpoint(const std::string& dir, bool checksums = true);

struct CheckpointEntry {
  int64_t step = 0;
  std::string path;
};
// Published step directories under `root` (no .tmp), by ascending step.
std::vector<CheckpointEntry> list_checkpoints(const std::string& root);
// The newest valid checkpoint, verifying newest first; `rejected` gets "path: reason" lines.
std::optional<CheckpointEntry> newest_valid_checkpoint(const std::string& root, std::vector<std::string>* rejected);
// The step directory `latest` names ("" when there is no pointer).
std::string read_latest(const std::string& root);

// Renames tmp_dir to root/step-N, fsyncs root and points `latest` at it (atomic replace).
std::string publish_checkpoint(const std::string& root, const std::string& tmp_dir, int64_t step);
// Keeps the newest `keep_last` (>= 1) and every step divisible by `keep_every` (0: none);
// deletes the other published directories (renamed to step-N.old first, so a crash mid-delete
// leaves no half-deleted valid-looking step). Returns the deleted paths.
std::vector<std::string> apply_retention(const std::string& root, int keep_last, int64_t keep_every);
// Removes step-*.tmp (saves that never finished) and step-*.old (interrupted deletes); returns
// what it removed.
std::vector<std::string> remove_unfinished(const std::string& root);

}  // namespace pc
