#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <set>
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

std::vector<fs::path> CheckpointManager::complete() const {
  std::error_code ec;
  std::vector<std::pair<int64_t, fs::path>> found;
  if (!fs::is_directory(root_, ec)) return {};
  for (auto& e : fs::directory_iterator(root_, ec)) {
    int64_t s = step_of(e.path());
    if (s >= 0 && fs::exists(e.path() / "trainer_state.json", ec)) found.emplace_back(s, e.path());
  }
  std::sort(found.begin(), found.end(), [](auto& a, auto& b) { return a.first > b.first; });
  std::vector<fs::path> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::optional<fs::path> CheckpointManager::latest() const {
  auto all = complete();
  if (all.empty()) return std::nullopt;
  return all.front();
}

namespace {

// Reads back every file of a checkpoint (safetensors headers and bounds, JSON) without using it.
void verify_checkpoint(const fs::path& dir) {
  std::error_code ec;
  bool weights = false;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const fs::path& f = it->path();
    if (f.extension() == ".safetensors") {
      SafetensorsFile st(f);
      std::string n = f.filename().string();
      weights |= n == "model.safetensors" || n == "adapter_model.safetensors" || n == "model.safetensors.index.json";
    } else if (f.extension() == ".json") {
      read_json_file(f, "checkpoint file");
      weights |= f.filename() == "model.safetensors.index.json";
    }
  }
  RLHF_CHECK(!ec, dir.string(), ": cannot list the checkpoint (", ec.message(), ")");
  RLHF_CHECK(weights, dir.string(), ": no model.safetensors or adapter_model.safetensors");
  for (const char* f : {"optimizer.safetensors", "rng.safetensors", "trainer_state.json"})
    RLHF_CHECK(fs::exists(dir / f, ec), dir.string(), ": ", f, " is missing");
  Json state = read_json_file(dir / "trainer_state.json", "trainer state");
  RLHF_CHECK(state.is_object() && state.contains("step") && state["step"].is_number_integer(),
             (dir / "trainer_state.json").string(), ": no integer \"step\"");
}

std::string short_value(const Json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

}  // namespace

std::vector<std::string> option_changes(const Json& saved, const Json& now) {
  // Options that change how often things are logged or kept, not what is trained.
  static const std::set<std::string> harmless = {"resume",     "resume-anyway", "logging-steps", "save-steps",
                                                 "keep-last",  "eval-steps",    "sample-every",  "_runtime",
                                                 "_inputs",    "max-bad-steps"};
  std::vector<std::string> out;
  if (!saved.is_object() || !now.is_object()) return out;
  std::set<std::string> keys;
  for (auto it = saved.begin(); it != saved.end(); ++it) keys.insert(it.key());
  for (auto it = now.begin(); it != now.end(); ++it) keys.insert(it.key());
  for (const auto& k : keys) {
    // An option the checkpoint does not record is newer than the binary that wrote it: not a change.
    if (harmless.count(k) || !saved.contains(k)) continue;
    Json a = saved.value(k, Json()), b = now.value(k, Json());
    if (a != b) out.push_back("--" + k + " " + short_value(a) + " -> " + short_value(b));
  }
  // Data files: the same path with other contents is another dataset.
  Json ai = saved.value("_inputs", Json::object()), bi = now.value("_inputs", Json::object());
  if (ai.is_object() && bi.is_object())
    for (auto it = bi.begin(); it != bi.end(); ++it)
      if (ai.contains(it.key()) && ai[it.key()] != it.value()) out.push_back(it.key() + " changed since the checkpoint");
  return out;
}

std::optional<fs::path> checkpoint_to_resume(const CheckpointManager& ck, const std::string& name, const Json& resolved,
                                             bool anyway) {
  auto all = ck.complete();
  if (all.empty()) return std::nullopt;
  std::optional<fs::path> use;
  std::string first_error;
  for (const auto& dir : all) {
    try {
      verify_checkpoint(dir);
      use = dir;
      break;
    } catch (const Error& e) {
      if (first_error.empty()) first_error = e.what();
      fs::path aside = dir;
      aside += ".corrupt";
      std::error_code ec;
      fs::remove_all(aside, ec);
      fs::rename(dir, aside, ec);
      log_warn("checkpoint ", dir.string(), " is unreadable (", e.what(), "); moved it to ", aside.filename().string(),
               " and falling back to the one before it");
    }
  }
  RLHF_CHECK(use, ck.root().string(), ": no readable checkpoint to resume from (newest: ", first_error,
             "); remove ", ck.root().string(), " to start over");
  if (use != all.front()) log_warn("resuming from the older checkpoint ", use->string());
  fs::path saved_cfg = *use / (name + "_config.json");
  if (fs::exists(saved_cfg)) {
    Json saved = read_json_file(saved_cfg, "checkpoint options");
    auto changes = option_changes(saved, resolved);
    std::string list;
    for (size_t i = 0; i < changes.size(); ++i) list += (i ? "; " : "") + changes[i];
    if (!changes.empty() && !anyway)
      RLHF_FAIL(use->string(), ": the run was started with other options or data (", list,
                "); resume with the same ones, or pass --resume-anyway to continue with the new ones");
    if (!changes.empty()) log_warn("--resume-anyway: continuing ", use->string(), " with changed options: ", list);
    Json rs = saved.value("_runtime", Json()), rn = resolved.value("_runtime", Json());
    if (rs.is_object()) rs.erase("threads");  // results do not depend on the thread count
    if (rn.is_object()) rn.erase("threads");
    if (!rs.is_null() && !rn.is_null() && rs != rn)
      log_warn("resuming ", use->string(), " with other runtime settings (", rs.dump(), " -> ", rn.dump(),
               "); results may differ slightly from an uninterrupted run");
  }
  return use;
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

namespace {

// What a training run writes into its --out (removed by --overwrite-output-dir).
bool is_training_product(const fs::path& p) {
  const std::string n = p.filename().string();
  static const std::set<std::string> names = {
      "checkpoints", "value", "config.json", "generation_config.json", "adapter_config.json",
      "adapter_model.safetensors", "tokenizer.json", "tokenizer.model", "tokenizer_config.json",
      "special_tokens_map.json", "metrics.jsonl", "samples.jsonl", "trainer_state.json",
      "value_head.safetensors", "reference_logps.safetensors"};
  return names.count(n) || n.starts_with("events.out.tfevents.") || n.ends_with("_config.json") ||
         (n.starts_with("model") && (n.ends_with(".safetensors") || n.ends_with(".safetensors.index.json")));
}

bool holds_model(const fs::path& out) {
  std::error_code ec;
  for (const char* f : {"model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors"})
    if (fs::exists(out / f, ec)) return true;
  return false;
}

}  // namespace

void mark_training_finished(const fs::path& out, int64_t steps) {
  write_json_atomic(out / "trainer_state.json", {{"finished", true}, {"global_step", steps}});
}

bool claim_training_output(const fs::path& out, const std::string& name, const Json& resolved, bool resume,
                           bool overwrite, bool resume_anyway) {
  std::error_code ec;
  CheckpointManager ck(out, 0);
  const bool checkpoints = !ck.complete().empty(), model = holds_model(out);
  bool finished = false;
  if (fs::exists(out / "trainer_state.json", ec)) {
    Json st = read_json_file(out / "trainer_state.json", "trainer state");
    finished = st.is_object() && st.value("finished", false);
  }
  if (!checkpoints && !model && !finished) return false;
  if (resume && !overwrite) {
    if (checkpoints) return false;
    RLHF_CHECK(finished && model, out.string(), ": holds a model but no checkpoint to resume from (keep one with --save-steps "
               "or --save-final-state); pass --overwrite-output-dir to train again, or choose another --out");
    fs::path saved = out / (name + "_config.json");
    auto changes = fs::exists(saved, ec) ? option_changes(read_json_file(saved, "run options"), resolved) : std::vector<std::string>{};
    std::string list;
    for (size_t i = 0; i < changes.size(); ++i) list += (i ? "; " : "") + changes[i];
    RLHF_CHECK(changes.empty(), out.string(), ": holds a finished run with other options or data (", list,
               ") and no checkpoint to continue from", resume_anyway ? " (--resume-anyway needs one)" : "",
               "; pass --overwrite-output-dir to train again, or choose another --out");
    log_info(out.string(), ": the run has finished already; nothing to do (--overwrite-output-dir trains again)");
    return true;
  }
  RLHF_CHECK(overwrite, out.string(), ": holds ", checkpoints ? "checkpoints" : "the model", " of an earlier run; pass --resume ",
             "to continue it, --overwrite-output-dir to start over, or choose another --out");
  // Never the run's own input: --model out --out out --overwrite-output-dir would delete it.
  for (auto it = resolved.begin(); it != resolved.end(); ++it)
    if (it.key() != "out" && it.key() != "output-dir" && it->is_string() && !it->get<std::string>().empty() &&
        fs::exists(it->get<std::string>(), ec) && fs::equivalent(it->get<std::string>(), out, ec))
      RLHF_FAIL("--", it.key(), " is the --out directory ", out.string(), "; --overwrite-output-dir would delete it: write to another --out");
  std::vector<fs::path> products;
  for (auto it = fs::directory_iterator(out, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    if (is_training_product(it->path())) products.push_back(it->path());
  int64_t removed = 0;
  for (auto& p : products) removed += fs::remove_all(p, ec) > 0;
  log_info(out.string(), ": --overwrite-output-dir: removed the earlier run's ", removed, " files and directories");
  return false;
}

}  // namespace rlhf
