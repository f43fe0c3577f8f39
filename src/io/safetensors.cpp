#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "core/fs.h"
#include "io/json.h"

namespace rlhf {

namespace {

struct DtypeDesc {
  const char* name;
  torch::ScalarType type;
  size_t size;
};
const DtypeDesc kDtypes[] = {
    {"F64", torch::kDouble, 8}, {"F32", torch::kFloat, 4},   {"F16", torch::kHalf, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kLong, 8}, {"I32", torch::kInt, 4},
    {"I16", torch::kShort, 2},  {"I8", torch::kChar, 1},     {"U8", torch::kByte, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeDesc* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

constexpr uint64_t kMaxHeader = 100ull << 20;  // the reference implementation's limit

}  // namespace

std::string st_dtype_name(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  RLHF_FAIL("safetensors: cannot store dtype ", c10::toString(t));
}

torch::ScalarType st_dtype_from_name(const std::string& name, const std::string& where) {
  const DtypeDesc* d = find_dtype(name);
  RLHF_CHECK(d, where, ": unsupported dtype \"", name, "\" (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
  return d->type;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
  try {
    open_and_validate();
  } catch (...) {
    release();  // a constructor that throws runs no destructor: unmap and close here
    throw;
  }
}

void SafetensorsFile::release() {
  if (map_) munmap(const_cast<uint8_t*>(map_), size_);
  if (fd_ >= 0) ::close(fd_);
  map_ = nullptr;
  fd_ = -1;
}

void SafetensorsFile::open_and_validate() {
  const std::string p = path_.string();
  fd_ = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  RLHF_CHECK(fd_ >= 0, p, ": cannot open (", std::strerror(errno), "); check the path");
  struct stat st {};
  RLHF_CHECK(fstat(fd_, &st) == 0 && S_ISREG(st.st_mode), p, ": not a regular file");
  size_ = size_t(st.st_size);
  RLHF_CHECK(size_ >= 8, p, ": truncated safetensors file (", size_, " bytes, no header); re-download or re-save it");
  void* m = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
  RLHF_CHECK(m != MAP_FAILED, p, ": cannot memory-map (", std::strerror(errno), ")");
  map_ = static_cast<const uint8_t*>(m);

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | map_[i];
  RLHF_CHECK(n <= kMaxHeader, p, ": header length ", n, " is implausible (> 100 MB); the file is corrupt or not safetensors");
  RLHF_CHECK(n <= size_ - 8, p, ": header length ", n, " runs past the end of the file (", size_,
             " bytes); the file is truncated");
  RLHF_CHECK(n >= 2 && map_[8] == '{', p, ": header is not a JSON object; the file is corrupt or not safetensors");
  std::string_view header(reinterpret_cast<const char*>(map_ + 8), size_t(n));
  Json h;
  try {
    h = Json::parse(header.begin(), header.end());
  } catch (const nlohmann::json::parse_error& e) {
    RLHF_FAIL(p, ": header is not valid JSON (at byte ", e.byte, "); the file is corrupt");
  } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range.406: a number like 1e999
    RLHF_FAIL(p, ": header is not valid JSON (", e.what(), "); the file is corrupt");
  }
  RLHF_CHECK(h.is_object(), p, ": header is not a JSON object");
  data_ = map_ + 8 + n;
  const uint64_t data_len = size_ - 8 - n;

  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& key = it.key();
    const Json& v = it.value();
    if (key == "__metadata__") {
      RLHF_CHECK(v.is_object(), p, ": __metadata__ must be an object of strings");
      for (auto m2 = v.begin(); m2 != v.end(); ++m2) {
        RLHF_CHECK(m2.value().is_string(), p, ": __metadata__.", m2.key(), " is not a string");
        metadata_[m2.key()] = m2.value().get<std::string>();
      }
      continue;
    }
    const std::string where = p + ": tensor \"" + key + "\"";
    RLHF_CHECK(v.is_object(), where, " entry is not an object");
    auto dt = v.find("dtype"), sh = v.find("shape"), off = v.find("data_offsets");
    RLHF_CHECK(dt != v.end() && dt->is_string(), where, " has no string \"dtype\"");
    RLHF_CHECK(sh != v.end() && sh->is_array(), where, " has no \"shape\" array");
    RLHF_CHECK(off != v.end() && off->is_array() && off->size() == 2, where,
               " has no \"data_offsets\" [begin, end]");
    StTensorInfo info;
    info.name = key;
    info.dtype = dt->get<std::string>();
    const DtypeDesc* d = find_dtype(info.dtype);
    RLHF_CHECK(d, where, " has unsupported dtype \"", info.dtype, "\"");
    uint64_t numel = 1;
    for (const auto& s : *sh) {
      RLHF_CHECK(s.is_number_unsigned() || (s.is_number_integer() && s.get<int64_t>() >= 0), where,
                 " has a shape entry that is not a non-negative integer");
      uint64_t dim = s.get<uint64_t>();
      RLHF_CHECK(dim <= uint64_t(std::numeric_limits<int64_t>::max()) &&
                     (dim == 0 || numel <= std::numeric_limits<uint64_t>::max() / dim),
                 where, " has a shape whose size overflows");
      numel *= dim;
      info.shape.push_back(int64_t(dim));
    }
    for (const auto& o : *off)
      RLHF_CHECK(o.is_number_unsigned() || (o.is_number_integer() && o.get<int64_t>() >= 0), where,
                 " has data_offsets that are not non-negative integers");
    info.begin = (*off)[0].get<uint64_t>();
    info.end = (*off)[1].get<uint64_t>();
    RLHF_CHECK(info.begin <= info.end, where, " has data_offsets begin > end");
    RLHF_CHECK(info.end <= data_len, where, " ends at byte ", info.end, " but the data section has only ",
               data_len, " bytes; the file is truncated or the header lies");
    RLHF_CHECK(numel <= std::numeric_limits<uint64_t>::max() / d->size, where, " has a shape whose size in bytes overflows");
    RLHF_CHECK(numel * d->size == info.end - info.begin, where, " has ", info.end - info.begin, " bytes of data but shape and dtype ", info.dtype,
               " need ", numel * d->size);
    index_[key] = infos_.size();
    infos_.push_back(std::move(info));
  }
  // The data section must be covered exactly, without overlaps or holes.
  std::vector<const StTensorInfo*> by_offset;
  for (const auto& i : infos_) by_offset.push_back(&i);
  std::sort(by_offset.begin(), by_offset.end(),
            [](auto* a, auto* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  uint64_t pos = 0;
  for (const auto* i : by_offset) {
    RLHF_CHECK(i->begin == pos, p, ": tensor \"", i->name, "\" starts at byte ", i->begin, " but ",
               i->begin < pos ? "overlaps the previous tensor" : "leaves a hole after the previous one",
               "; the header is corrupt");
    pos = i->end;
  }
  RLHF_CHECK(pos == data_len, p, ": ", data_len - pos, " bytes after the last tensor are not described by the header");
}

SafetensorsFile::~SafetensorsFile() { release(); }

const StTensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &infos_[it->second];
}

torch::Tensor SafetensorsFile::load(const std::string& name, torch::ScalarType dtype) const {
  const StTensorInfo* info = find(name);
  RLHF_CHECK(info, path_.string(), ": no tensor named \"", name, "\"");
  const DtypeDesc* d = find_dtype(info->dtype);
  auto t = torch::empty(info->shape, torch::TensorOptions().dtype(d->type));
  if (info->end > info->begin) std::memcpy(t.data_ptr(), data_ + info->begin, info->end - info->begin);  // empty: no storage
  if (dtype == torch::ScalarType::Undefined || dtype == d->type) return t;
  RLHF_CHECK(torch::isFloatingType(dtype) == torch::isFloatingType(d->type), path_.string(), ": tensor \"", name,
             "\" is ", info->dtype, ", cannot use it as ", c10::toString(dtype));
  return t.to(dtype);
}

// ---- a directory of shards ---------------------------------------------------------------------

SafetensorsReader::SafetensorsReader(const std::filesystem::path& p, const std::string& basename) : root_(p) {
  namespace fs = std::filesystem;
  std::vector<fs::path> shards;
  std::map<std::string, std::string> listed;  // an index's weight_map: tensor -> shard file
  fs::path index_path;
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) {
    shards.push_back(p);
  } else {
    RLHF_CHECK(fs::is_directory(p, ec), p.string(), ": model directory not found; check the path");
    fs::path single = p / (basename + ".safetensors"), index = p / (basename + ".safetensors.index.json");
    if (fs::exists(single)) {
      shards.push_back(single);
    } else if (fs::exists(index)) {
      Json j = read_json_file(index, "safetensors index");
      auto wm = j.find("weight_map");
      RLHF_CHECK(wm != j.end() && wm->is_object(), index.string(), ": no \"weight_map\" object");
      std::vector<std::string> files;
      for (auto it = wm->begin(); it != wm->end(); ++it) {
        RLHF_CHECK(it.value().is_string(), index.string(), ": weight_map[\"", it.key(), "\"] is not a file name");
        std::string f = it.value().get<std::string>();
        RLHF_CHECK(f.find('/') == std::string::npos && f.find("..") == std::string::npos, index.string(),
                   ": shard name \"", f, "\" must be a plain file name in the same directory");
        if (std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
        listed[it.key()] = f;
      }
      RLHF_CHECK(!files.empty(), index.string(), ": \"weight_map\" lists no tensors");
      for (auto& f : files) shards.push_back(p / f);
      index_path = index;
    } else {
      RLHF_FAIL(p.string(), ": no ", basename, ".safetensors or ", basename,
                ".safetensors.index.json (pytorch_model.bin is not supported: re-save with safe_serialization=True)");
    }
  }
  for (auto& s : shards) {
    files_.push_back(std::make_unique<SafetensorsFile>(s));
    for (const auto& info : files_.back()->tensors()) {
      auto [it, fresh] = where_.emplace(info.name, files_.size() - 1);
      RLHF_CHECK(fresh, s.string(), ": tensor \"", info.name, "\" also appears in ",
                 files_[it->second]->path().string());
    }
  }
  if (index_path.empty()) return;
  // Every shard opened: the index must list exactly the tensors they hold, each under its shard.
  for (const auto& f : files_) {
    const std::string shard = f->path().filename().string();
    for (const auto& info : f->tensors()) {
      auto l = listed.find(info.name);
      RLHF_CHECK(l != listed.end(), index_path.string(), ": shard ", shard, " holds tensor \"", info.name,
                 "\" that weight_map does not list; the index does not match its shards");
      RLHF_CHECK(l->second == shard, index_path.string(), ": weight_map puts \"", info.name, "\" in ", l->second,
                 " but it is in ", shard, "; the index does not match its shards");
    }
  }
  for (const auto& [name, file] : listed)
    RLHF_CHECK(where_.count(name), index_path.string(), ": weight_map lists tensor \"", name, "\" in ", file,
               " but that shard does not hold it; the index does not match its shards (re-download or re-save the model)");
}

std::vector<std::string> SafetensorsReader::names() const {
  std::vector<std::string> out;
  for (auto& [k, v] : where_) out.push_back(k);
  return out;
}

bool SafetensorsReader::contains(const std::string& name) const { return where_.count(name) > 0; }

const StTensorInfo& SafetensorsReader::info(const std::string& name) const {
  auto it = where_.find(name);
  RLHF_CHECK(it != where_.end(), root_.string(), ": missing tensor \"", name, "\"");
  return *files_[it->second]->find(name);
}

torch::Tensor SafetensorsReader::load(const std::string& name, torch::ScalarType dtype) const {
  auto it = where_.find(name);
  RLHF_CHECK(it != where_.end(), root_.string(), ": missing tensor \"", name, "\"");
  return files_[it->second]->load(name, dtype);
}

std::string SafetensorsReader::describe() const { return root_.string(); }

std::string SafetensorsReader::file_of(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? root_.string() : files_[it->second]->path().string();
}

void require_finite(const torch::Tensor& t, const std::string& where, const std::string& name, const std::string& fix) {
  if (!t.is_floating_point() || t.numel() == 0) return;
  torch::NoGradGuard ng;
  if (t.isfinite().all().item<bool>()) return;
  int64_t bad = t.numel() - t.isfinite().sum().item<int64_t>();
  RLHF_FAIL(where, ": tensor \"", name, "\" holds ", bad, " NaN/Inf value", bad == 1 ? "" : "s", "; ", fix);
}

void require_finite_to_save(const NamedTensors& tensors, const std::string& where) {
  for (const auto& [name, t] : tensors)
    require_finite(t, where, name,
                   "refusing to write non-finite weights (the training diverged: lower --lr, keep --max-grad-norm on)");
}

// ---- writing -------------------------------------------------------------------------------------

void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors, torch::ScalarType dtype,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> data;
  Json header = Json::object();
  Json meta = Json::object();
  meta["format"] = "pt";
  for (auto& [k, v] : metadata) meta[k] = v;
  header["__metadata__"] = meta;
  uint64_t offset = 0;
  for (const auto& [name, t0] : tensors) {
    RLHF_CHECK(!header.contains(name), path.string(), ": tensor \"", name, "\" given twice");
    torch::Tensor t = t0.detach().to(torch::kCPU);
    if (dtype != torch::ScalarType::Undefined && t.is_floating_point()) t = t.to(dtype);
    t = t.contiguous();
    uint64_t bytes = uint64_t(t.numel()) * t.element_size();
    Json e;
    e["dtype"] = st_dtype_name(t.scalar_type());
    e["shape"] = t.sizes().vec();
    e["data_offsets"] = {offset, offset + bytes};
    header[name] = e;
    offset += bytes;
    data.push_back(t);
  }
  std::string h = header.dump();
  while ((h.size() % 8) != 0) h.push_back(' ');
  uint8_t len[8];
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(n >> (8 * i));
  AtomicFile f(path);
  f.write(len, 8);
  f.write(h);
  for (const auto& t : data) f.write(t.data_ptr(), size_t(t.numel()) * t.element_size());
  f.commit();
}

void save_safetensors_dir(const std::filesystem::path& dir, const NamedTensors& tensors, torch::ScalarType dtype,
                          const std::string& basename, uint64_t max_shard_bytes) {
  ensure_directory(dir);
  auto bytes_of = [&](const torch::Tensor& t) {
    size_t es = (dtype != torch::ScalarType::Undefined && t.is_floating_point()) ? c10::elementSize(dtype) : t.element_size();
    return uint64_t(t.numel()) * es;
  };
  std::vector<NamedTensors> shards(1);
  uint64_t cur = 0, total = 0;
  for (const auto& nt : tensors) {
    uint64_t b = bytes_of(nt.second);
    if (cur > 0 && cur + b > max_shard_bytes) {
      shards.emplace_back();
      cur = 0;
    }
    shards.back().push_back(nt);
    cur += b;
    total += b;
  }
  std::error_code ec;
  if (shards.size() == 1) {
    save_safetensors(dir / (basename + ".safetensors"), tensors, dtype);
    std::filesystem::remove(dir / (basename + ".safetensors.index.json"), ec);
    return;
  }
  Json wm = Json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    char name[128];
    std::snprintf(name, sizeof name, "%s-%05zu-of-%05zu.safetensors", basename.c_str(), i + 1, shards.size());
    save_safetensors(dir / name, shards[i], dtype);
    for (auto& nt : shards[i]) wm[nt.first] = name;
  }
  Json index = {{"metadata", {{"total_size", total}}}, {"weight_map", wm}};
  write_json_atomic(dir / (basename + ".safetensors.index.json"), index);
  std::filesystem::remove(dir / (basename + ".safetensors"), ec);
}

}  // namespace rlhf
