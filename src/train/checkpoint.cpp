#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/runtime.h"

namespace rlhf {

namespace fs = std::filesystem;

CheckpointManager::CheckpointManager(fs::path out_dir, int64_t keep_last)
    : root_(std::move(out_dir) / "checkpoints"), keep_last_(keep_last) {}

int64_t CheckpointManager::step_of(const fs::path& dir) {
  std::string n = dir.filename().string();
  if (n.rfind("step-", 0) != 0 || n.find('.') != std::string::npos) return -1;
  try {
    return std::stoll(n.substr(5));
  } catch (...) {
    return -1;
  }
}

std::optional<fs::path> CheckpointManager::latest() const {
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) return std::nullopt;
  std::optional<fs::path> best;
  int64_t best_step = -1;
  for (auto& e : fs::directory_iterator(root_, ec)) {
    int64_t s = step_of(e.path());
    if (s > best_step && fs::exists(e.path() / "trainer_state.json")) {
      best_step = s;
      best = e.path();
    }
  }
  return best;
}

fs::path CheckpointManager::save(int64_t step, const std::function<void(const fs::path&)>& fill) {
  ensure_directory(root_);
  char name[64];
  std::snprintf(name, sizeof name, "step-%06lld", (long long)step);
  fs::path final_dir = root_ / name, tmp = root_ / (std::string(name) + ".tmp");
  std::error_code ec;
  fs::remove_all(tmp, ec);
  ensure_directory(tmp);
  try {
    fill(tmp);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  replace_directory(tmp, final_dir);
  // Make the rename durable before older checkpoints go.
  int dfd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    fsync(dfd);
    ::close(dfd);
  }
  std::vector<std::pair<int64_t, fs::path>> all;
  for (auto& e : fs::directory_iterator(root_, ec)) {
    int64_t s = step_of(e.path());
    if (s >= 0) all.emplace_back(s, e.path());
  }
  std::sort(all.begin(), all.end());
  for (size_t i = 0; keep_last_ > 0 && i + size_t(keep_last_) < all.size(); ++i) fs::remove_all(all[i].second, ec);
  return final_dir;
}

NamedTensors rng_states() {
  NamedTensors out;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    out.emplace_back("cpu", gen.get_state());
  }
  if (device().is_cuda()) {
    auto gen = at::globalContext().defaultGenerator(device());
    std::lock_guard<std::mutex> lock(gen.mutex());
    out.emplace_back("cuda", gen.get_state());
  }
  return out;
}

void restore_rng_states(const fs::path& file) {
  SafetensorsFile f(file);
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(f.load("cpu", torch::kByte));
  }
  if (device().is_cuda() && f.find("cuda")) {
    auto gen = at::globalContext().defaultGenerator(device());
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(f.load("cuda", torch::kByte));
  }
}

}  // namespace rlhf
