// File helpers that never leave a half-written output behind: everything is written to a
// temporary name in the same directory, flushed to disk, then renamed over the final name.
#pragma once
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace rlhf {

namespace fs = std::filesystem;

// A file being written under "<path>.tmp.<pid>"; commit() fsyncs and renames it to `path`.
// Destroyed without commit() (an exception, an error), the temporary is removed.
class AtomicFile {
 public:
  explicit AtomicFile(fs::path path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  void commit();
  const fs::path& path() const { return path_; }

 private:
  fs::path path_, tmp_;
  std::FILE* f_ = nullptr;
};

void write_file_atomic(const fs::path& path, std::string_view data);

// Whole file as a string; `what` names it in errors ("config.json of the policy model").
std::string read_file(const fs::path& path, std::string_view what = "file");

// Replaces directory `dst` by `src` (a finished temporary directory) as atomically as POSIX allows:
// dst -> dst.old, src -> dst, remove dst.old.
void replace_directory(const fs::path& src, const fs::path& dst);

// Creates a directory (and parents) or explains why it can't.
void ensure_directory(const fs::path& dir);

// What an errno means for someone writing files, with the fix ("no space left on device; free some
// disk space and run again"; EFBIG names the file-size limit).
std::string errno_text(int e);

// What a file holds, cheaply comparable across runs: "<size>:<64-bit FNV-1a of the bytes>" (files
// up to 4 GiB; larger ones "<size>:<mtime>"). "" when it is not a readable regular file.
std::string file_fingerprint(const fs::path& path);

// Clears what interrupted runs left in `dir` (a directory this process has locked, see DirLock):
// AtomicFile temporaries "<name>.tmp.<pid>" of processes that no longer run, half-written
// checkpoint directories (checkpoints/step-N.tmp), and a checkpoint moved aside by replace_directory
// (step-N.old: put back when step-N is missing, else removed). Subdirectories that another process
// holds locked are left alone. Returns the number of entries removed or restored (and logs it).
int64_t remove_stale_temporaries(const fs::path& dir);
// The same for one output file: "<file>.tmp.<pid>" beside it, of processes that no longer run.
int64_t remove_stale_temporaries_of(const fs::path& file);

}  // namespace rlhf
