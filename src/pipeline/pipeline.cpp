#include "pipeline/pipeline.h"

#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/lock.h"
#include "core/fs.h"
#include "core/log.h"
#include "eval/report.h"
#include "io/jsonl.h"
#include "pipeline/ai.h"
#include "pipeline/human.h"

namespace rlhf {

namespace {

namespace fs = std::filesystem;

uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string hex(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

std::string format_number(const Json& v) {
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  std::ostringstream o;
  o.precision(10);
  o << v.get<double>();
  return o.str();
}

// A pipeline being run: the config, where things go, and what each stage took.
class Runner {
 public:
  Runner(const Json& cfg, const PipelineOptions& o) : cfg_(cfg), o_(o) {
    RLHF_CHECK(cfg.is_object(), where(), ": the pipeline config must be a JSON object");
    for (auto& [k, v] : cfg.items()) {
      static const std::set<std::string> known = {"run_dir", "world", "pretrain", "base_model", "sft", "sft_model",
                                                  "prompts", "eval_prompts", "rounds", "sample", "rank", "reward",
                                                  "rl", "dpo", "eval", "chat_template", "description", "cai",
                                                  "rlaif"};
      RLHF_CHECK(known.count(k) || k.rfind('_', 0) == 0, where(), ": unknown key \"", k, "\"; known keys: run_dir, world, "
                 "pretrain, base_model, sft, sft_model, prompts, eval_prompts, rounds, sample, rank, reward, rl, dpo, "
                 "cai, rlaif, eval, chat_template (keys starting with _ are comments)");
    }
    run_dir_ = !o.run_dir.empty() ? o.run_dir : cfg.value("run_dir", std::string());
    RLHF_CHECK(!run_dir_.empty(), where(), ": no \"run_dir\" (or pass --run-dir)");
    vars_["run_dir"] = run_dir_;
    vars_["world"] = (fs::path(run_dir_) / "world").string();
  }

  std::string where() const { return o_.config_path.empty() ? std::string("pipeline config") : o_.config_path; }
  const std::string& run_dir() const { return run_dir_; }
  fs::path path(const std::string& rel) const { return fs::path(run_dir_) / rel; }

  std::string subst(const std::string& s) const {
    std::string out = s;
    for (auto& [k, v] : vars_) {
      std::string key = "${" + k + "}";
      for (size_t p = out.find(key); p != std::string::npos; p = out.find(key, p + v.size())) out.replace(p, key.size(), v);
    }
    RLHF_CHECK(out.find("${") == std::string::npos, where(), ": unknown variable in \"", s,
               "\" (known: ${run_dir}, ${world})");
    return out;
  }

  const Json& section(const char* name) const {
    static const Json empty = Json::object();
    auto it = cfg_.find(name);
    if (it == cfg_.end() || it->is_null()) return empty;
    RLHF_CHECK(it->is_object(), where(), ": \"", name, "\" must be an object of command-line options");
    return *it;
  }
  bool has(const char* name) const { return cfg_.contains(name) && !cfg_[name].is_null(); }
  std::string str(const char* name) const {
    RLHF_CHECK(cfg_.contains(name) && cfg_[name].is_string(), where(), ": \"", name, "\" must be a path (string)");
    return subst(cfg_[name].get<std::string>());
  }

  // {"epochs": 2, "lora": true, "text": ["a", "b"]} -> --epochs 2 --lora --text a b
  std::vector<std::string> options(const Json& sec, const std::set<std::string>& reserved,
                                   const std::string& name) const {
    std::vector<std::string> args;
    for (auto& [k, v] : sec.items()) {
      if (k.rfind('_', 0) == 0) continue;
      RLHF_CHECK(!reserved.count(k), where(), ": \"", name, "\".\"", k, "\" is set by the pipeline itself");
      std::string flag = "--" + k;
      for (auto& c : flag)
        if (c == '_') c = '-';
      if (v.is_boolean()) {
        if (v.get<bool>()) args.push_back(flag);
      } else if (v.is_number()) {
        args.push_back(flag);
        args.push_back(format_number(v));
      } else if (v.is_string()) {
        args.push_back(flag);
        args.push_back(subst(v.get<std::string>()));
      } else if (v.is_array()) {
        args.push_back(flag);
        for (auto& e : v) args.push_back(e.is_string() ? subst(e.get<std::string>()) : e.is_number() ? format_number(e) : e.dump());
      } else if (!v.is_null()) {
        RLHF_FAIL(where(), ": \"", name, "\".\"", k, "\" must be a string, number, boolean or list");
      }
    }
    return args;
  }

  // What an input path looks like now (size and time of the file, or of a directory's files), so a
  // changed input reruns the stages that read it. Paths inside the run directory are covered by the
  // keys of the stages that wrote them.
  std::string fingerprint(const std::string& p) const {
    std::error_code ec;
    if (p.empty() || p[0] == '-' || !fs::exists(p, ec)) return "";
    auto rel = fs::relative(fs::absolute(p), fs::absolute(run_dir_), ec);
    if (!ec && !rel.empty() && rel.native().rfind("..", 0) != 0) return "";
    auto one = [](const fs::path& f) {
      struct stat st {};
      if (::stat(f.c_str(), &st) != 0) return std::string();
      return f.filename().string() + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
             std::to_string(st.st_mtim.tv_nsec);
    };
    if (!fs::is_directory(p, ec)) return one(p);
    std::vector<std::string> parts;
    for (auto& e : fs::directory_iterator(p, ec))
      if (e.is_regular_file()) parts.push_back(one(e.path()));
    std::sort(parts.begin(), parts.end());
    std::string s;
    for (auto& x : parts) s += x + ";";
    return s;
  }

  // Runs (or skips) one stage. `output` is what the stage produces (file or directory); `argv` the
  // subcommand and its options, or empty for an in-process `body`.
  // A training stage's `output` is a file inside its --out directory: the directory is its workspace
  // (checkpoints), removed when the stage must start over.
  std::string stage(const std::string& name, const std::vector<std::string>& argv, const fs::path& output,
                    const std::vector<std::string>& deps, bool resumable,
                    const std::function<void()>& body = nullptr) {
    const fs::path workspace = resumable ? output.parent_path() : output;
    std::string keysrc = name;
    for (auto& a : argv) keysrc += '\0' + a + '\0' + fingerprint(a);
    for (auto& d : deps) keysrc += "\x01" + d;
    std::string key = hex(fnv1a(keysrc));
    keys_[name] = key;
    fs::path marker = path(".stages") / (name + ".json");
    Json m = fs::exists(marker) ? read_json_file(marker, "stage marker") : Json::object();
    bool same = m.value("key", "") == key;
    std::string cmdline = "rlhf";
    for (auto& a : argv) cmdline += " " + (a.find(' ') != std::string::npos ? "'" + a + "'" : a);
    if (o_.dry_run) {
      std::printf("[%s] %s\n", name.c_str(), argv.empty() ? "(in process)" : cmdline.c_str());
      return key;
    }
    if (same && m.value("done", false) && fs::exists(output)) {
      log_info("stage ", name, ": up to date, skipped (", output.string(), ")");
      timings_.push_back({{"stage", name}, {"seconds", m.value("seconds", 0.0)}, {"skipped", true}});
      return key;
    }
    bool resume = same && resumable && fs::exists(workspace);
    if (!same && fs::exists(workspace)) {
      // Settings or inputs changed: the old output (and its checkpoints) must not be continued.
      std::error_code ec;
      fs::remove_all(workspace, ec);
    }
    ensure_directory(marker.parent_path());
    write_json_atomic(marker, {{"key", key}, {"done", false}, {"command", cmdline}});
    log_info("stage ", name, resume ? ": resuming" : ": running", argv.empty() ? "" : ": " + cmdline);
    auto t0 = std::chrono::steady_clock::now();
    if (argv.empty()) {
      body();
    } else {
      std::vector<std::string> full = {"rlhf"};
      full.insert(full.end(), o_.global_args.begin(), o_.global_args.end());
      full.insert(full.end(), argv.begin(), argv.end());
      if (resume) full.push_back("--resume");
      run_child(name, full);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    RLHF_CHECK(fs::exists(output), "stage ", name, " finished without writing ", output.string());
    write_json_atomic(marker, {{"key", key}, {"done", true}, {"seconds", secs}, {"command", cmdline}});
    timings_.push_back({{"stage", name}, {"seconds", secs}, {"skipped", false}});
    return key;
  }

  void run_child(const std::string& name, const std::vector<std::string>& argv) {
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    RLHF_CHECK(pid >= 0, "stage ", name, ": fork failed: ", std::strerror(errno));
    if (pid == 0) {
      // The stage dies with the pipeline (kill -9 included): it gets SIGTERM, saves a checkpoint if it can.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);
      std::vector<char*> cargs;
      for (auto& a : argv) cargs.push_back(const_cast<char*>(a.c_str()));
      cargs.push_back(nullptr);
      ::execv(o_.exe.c_str(), cargs.data());
      std::fprintf(stderr, "error: stage %s: cannot run %s: %s\n", name.c_str(), o_.exe.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
      RLHF_CHECK(errno == EINTR, "stage ", name, ": waitpid failed: ", std::strerror(errno));
    }
    if (WIFSIGNALED(status))
      RLHF_FAIL("stage ", name, " was killed by signal ", WTERMSIG(status),
                "; run the same pipeline command again to resume it");
    RLHF_CHECK(WEXITSTATUS(status) == 0, "stage ", name, " failed (exit code ", WEXITSTATUS(status),
               "; its error is printed above); fix it and run the same pipeline command again: finished stages are kept");
  }

  const Json& cfg_;
  const PipelineOptions& o_;
  std::string run_dir_;
  std::map<std::string, std::string> vars_;
  std::map<std::string, std::string> keys_;
  Json timings_ = Json::array();
};

// Appends the records of `files` (which must exist) into one JSONL, each record once.
void concat_jsonl(const std::vector<fs::path>& files, const fs::path& out) {
  AtomicFile f(out);
  for (auto& in : files) {
    if (!is_plain_jsonl(in)) {  // a JSON array or gzip: its records, one per line
      for (auto& r : read_jsonl(in)) f.write(r.value.dump() + "\n");
      continue;
    }
    std::string s = read_file(in, "rankings");
    if (!s.empty() && s.back() != '\n') s += '\n';
    f.write(s);
  }
  f.commit();
}

// Splits rankings into training and held-out records: every k-th record (k = 1 / fraction) is held out.
void split_rankings(const fs::path& in, double heldout, const fs::path& train, const fs::path& held) {
  auto recs = read_jsonl(in);
  int64_t every = heldout > 0 ? std::max<int64_t>(2, int64_t(std::llround(1.0 / heldout))) : 0;
  JsonlWriter a(train), b(held);
  int64_t n_held = 0;
  for (size_t i = 0; i < recs.size(); ++i) {
    bool h = every > 0 && int64_t(i) % every == every - 1;
    (h ? b : a).write(recs[i].value);
    n_held += h;
  }
  RLHF_CHECK(int64_t(recs.size()) - n_held >= 2, in.string(), ": only ", recs.size(), " ranked prompts; need more to train on");
  a.commit();
  b.commit();
}

// Training curves from a stage's metrics.jsonl: the given keys against "step".
void add_curve(Json& curves, const fs::path& metrics, const std::string& title, const std::string& y_label,
               const std::vector<std::string>& keys) {
  if (!fs::exists(metrics)) return;
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> series;
  for (auto& r : read_jsonl(metrics, JsonlReadOptions{true, 0})) {
    const Json& j = r.value;
    if (!j.contains("step") || !j["step"].is_number()) continue;
    for (auto& k : keys)
      if (j.contains(k) && j[k].is_number()) {
        series[k].first.push_back(j["step"].get<double>());
        series[k].second.push_back(j[k].get<double>());
      }
  }
  if (series.empty()) return;
  Json c = {{"title", title}, {"x_label", "step"}, {"y_label", y_label}, {"series", Json::array()}};
  for (auto& k : keys)
    if (series.count(k)) c["series"].push_back({{"name", k}, {"x", series[k].first}, {"y", series[k].second}});
  curves.push_back(c);
}

}  // namespace

Json run_pipeline(const Json& config, const PipelineOptions& opts) {
  Runner R(config, opts);
  ensure_directory(R.run_dir());
  std::optional<DirLock> lock;  // one pipeline per run directory; each stage locks its own output too
  if (!opts.dry_run) lock.emplace(R.run_dir(), "--run-dir");
  if (!opts.dry_run) write_json_atomic(R.path("pipeline_config.json"), config);
  const std::string chat_template = config.value("chat_template", std::string());
  auto with_template = [&](std::vector<std::string> a) {
    if (!chat_template.empty()) a.insert(a.end(), {"--chat-template", chat_template});
    return a;
  };
  const bool have_world = R.has("world");
  // What a training stage leaves when it has finished: a full model, or with "lora": true its PEFT
  // adapter (which the next stages read: every command that reads a model accepts an adapter).
  auto product = [](const std::string& dir, const Json& section) {
    const Json& l = section.is_object() ? section.value("lora", Json(false)) : Json(false);
    bool lora = l.is_boolean() ? l.get<bool>() : (l.is_string() && l.get<std::string>() == "true");
    return fs::path(dir) / (lora ? "adapter_model.safetensors" : "model.safetensors");
  };

  // 1. the demo world
  if (have_world) {
    auto a = std::vector<std::string>{"world", "generate", "--out", R.path("world").string()};
    auto more = R.options(R.section("world"), {"out"}, "world");
    a.insert(a.end(), more.begin(), more.end());
    R.stage("world", a, R.path("world") / "world.json", {}, false);
  }
  std::vector<std::string> up = have_world ? std::vector<std::string>{R.keys_["world"]} : std::vector<std::string>{};

  // 2. base model: pretrained here, or given
  std::string base;
  if (R.has("pretrain")) {
    base = R.path("base").string();
    auto a = std::vector<std::string>{"pretrain", "--out", base};
    auto more = R.options(R.section("pretrain"), {"out"}, "pretrain");
    a.insert(a.end(), more.begin(), more.end());
    up = {R.stage("pretrain", a, R.path("base") / "model.safetensors", up, true)};
  } else if (R.has("base_model")) {
    base = R.str("base_model");
  }

  // 3. SFT
  std::string sft;
  if (R.has("sft")) {
    RLHF_CHECK(!base.empty(), R.where(), ": \"sft\" needs a base model: \"pretrain\" or \"base_model\"");
    sft = R.path("sft").string();
    auto a = with_template({"sft", "--model", base, "--out", sft});
    auto more = R.options(R.section("sft"), {"model", "out"}, "sft");
    a.insert(a.end(), more.begin(), more.end());
    up = {R.stage("sft", a, product(sft, R.section("sft")), up, true)};
  } else {
    RLHF_CHECK(R.has("sft_model") || !base.empty(), R.where(), ": give \"sft\" (with a base model) or \"sft_model\"");
    sft = R.has("sft_model") ? R.str("sft_model") : base;
  }
  std::string sft_key = up.empty() ? "" : up[0];
  const std::string sft_eval = sft;  // the "sft" row of the evaluation (RL may start from SL-CAI instead)
  const std::string world_constitution = have_world ? R.path("world/constitution.json").string() : "";
  auto constitution_of = [&](const Json& sec, const std::string& name) {
    if (sec.contains("constitution")) {
      RLHF_CHECK(sec["constitution"].is_string(), R.where(), ": ", name, ".constitution must be a path (string)");
      return R.subst(sec["constitution"].get<std::string>());
    }
    RLHF_CHECK(!world_constitution.empty(), R.where(), ": ", name, " needs \"constitution\": a constitution JSON "
               "(examples/constitutions/default.json)");
    return world_constitution;
  };
  // The judge: "judge" if given, else the base model (a pretrained model judges, as in Constitutional AI),
  // else the SFT model.
  auto judge_of = [&](const Json& sec, const std::string& name) {
    if (sec.contains("judge")) {
      RLHF_CHECK(sec["judge"].is_string(), R.where(), ": ", name, ".judge must be a model directory (string)");
      return R.subst(sec["judge"].get<std::string>());
    }
    return !base.empty() ? base : sft;
  };
  // Where `rlhf judge --out RANKINGS` puts its summary (read back by the AI-statistics stage).
  auto judge_summary = [](const fs::path& rankings) {
    return rankings.parent_path() / (rankings.stem().string() + "_judge.json");
  };
  // `rlhf judge` over a samples file: rankings from a Bradley-Terry fit of the judge's pairwise probabilities.
  auto judge_stage = [&](const std::string& name, const Json& sec, const fs::path& samples, const fs::path& out,
                         const std::vector<std::string>& deps) {
    Json opts = sec;
    for (const char* k : {"source", "judge", "constitution", "heldout", "where", "direct", "agreement"}) opts.erase(k);
    RLHF_CHECK(!opts.contains("format"), R.where(), ": ", name, ".format: the pipeline needs rankings (one record per prompt)");
    std::vector<std::string> a = {"judge", "--model", judge_of(sec, name), "--constitution", constitution_of(sec, name),
                                  "--samples", samples.string(), "--out", out.string(), "--stats",
                                  judge_summary(out).string(),
                                  "--prompts-as-chat"};  // the pipeline samples with --chat
    auto more = R.options(opts, {"model", "samples", "out", "stats", "pairs", "tokenizer"}, name);
    a.insert(a.end(), more.begin(), more.end());
    return R.stage(name, a, out, deps, false);
  };
  // The AI labeller's agreement with the gold order and with the simulated raters (rater_rankings).
  auto ai_stats_stage = [&](const std::string& name, const fs::path& rankings, const fs::path& raters,
                            const std::vector<std::string>& deps, const fs::path& out) {
    return R.stage(name, {}, out, deps, false, [&, rankings, raters, out] {
      write_json_atomic(out, ai_label_stats(rankings, judge_summary(rankings),
                                            have_world ? R.path("world/world.json").string() : "", raters));
    });
  };
  std::vector<std::pair<std::string, std::string>> extra_policies;  // evaluated after sft: sl-cai, rlaif arms
  Json ai_feedback = Json::object();

  // 3b. SL-CAI: the SFT model critiques and revises its own answers; a model is fine-tuned on the revisions
  if (R.has("cai")) {
    RLHF_CHECK(R.has("sft"), R.where(), ": \"cai\" fine-tunes the base model on the revisions like \"sft\" does; add \"sft\"");
    Json cai = R.section("cai");
    const std::string cons = constitution_of(cai, "cai");
    const std::string data_mode = cai.value("data", std::string("add"));
    RLHF_CHECK(data_mode == "add" || data_mode == "replace", R.where(), ": cai.data must be \"add\" (revisions added to SFT's "
               "data) or \"replace\"");
    const std::string start_from = cai.value("start_rl_from", std::string("sl-cai"));
    RLHF_CHECK(start_from == "sl-cai" || start_from == "sft", R.where(), ": cai.start_rl_from must be \"sl-cai\" or \"sft\"");
    const std::string cprompts = cai.contains("prompts") ? R.subst(cai["prompts"].get<std::string>())
                                 : R.has("prompts") ? R.str("prompts") : R.path("world/prompts.jsonl").string();
    Json sft_over = cai.value("sft", Json::object());
    for (const char* k : {"constitution", "data", "start_rl_from", "prompts", "sft"}) cai.erase(k);
    std::vector<std::string> a = with_template({"cai", "revise", "--model", sft, "--constitution", cons, "--prompts", cprompts,
                                                "--out", R.path("cai").string()});
    auto more = R.options(cai, {"model", "out"}, "cai");
    a.insert(a.end(), more.begin(), more.end());
    auto rk = R.stage("cai/revise", a, R.path("cai/sft.jsonl"), {sft_key}, false);
    const Json& sft_sec = R.section("sft");
    RLHF_CHECK(sft_sec.contains("data") && sft_sec["data"].is_string(), R.where(), ": sft.data must be a path");
    const std::string sft_data = R.subst(sft_sec["data"].get<std::string>());
    fs::path mixed = R.path("cai/sl_cai_data.jsonl");
    auto dk = R.stage("cai/data", {}, mixed, {rk, data_mode, R.fingerprint(sft_data) + sft_data}, false, [&] {
      std::vector<fs::path> parts;
      if (data_mode == "add") parts.push_back(sft_data);
      parts.push_back(R.path("cai/sft.jsonl"));
      concat_jsonl(parts, mixed);
    });
    Json sec = sft_sec;
    sec.erase("data");
    for (auto& [k, v] : sft_over.items()) sec[k] = v;
    const std::string out = R.path("sl-cai").string();
    auto b = with_template({"sft", "--model", base, "--data", mixed.string(), "--out", out});
    auto more2 = R.options(sec, {"model", "out", "data"}, "cai.sft");
    b.insert(b.end(), more2.begin(), more2.end());
    auto sk = R.stage("sl-cai", b, product(out, sec), {dk, up.empty() ? "" : R.keys_.count("pretrain") ? R.keys_["pretrain"] : ""}, true);
    extra_policies.push_back({"sl-cai", out});
    if (start_from == "sl-cai") {
      sft = out;
      sft_key = sk;
    }
  }

  // 4. rounds of sample -> rank -> reward model -> RL / DPO
  const int64_t rounds = config.value("rounds", int64_t(1));
  RLHF_CHECK(rounds >= 1 && rounds <= 100, R.where(), ": \"rounds\" must be between 1 and 100");
  const Json& rank = R.section("rank");
  const std::string source = rank.value("source", have_world ? std::string("simulated") : std::string("file"));
  RLHF_CHECK(source == "simulated" || source == "file" || source == "human" || source == "ai" || source == "mix", R.where(),
             ": rank.source must be \"simulated\", \"human\", \"ai\", \"mix\" or \"file\"");
  RLHF_CHECK(source != "simulated" || have_world, R.where(),
             ": rank.source \"simulated\" needs the demo \"world\" (its gold rater); use \"file\" with your rankings");
  RLHF_CHECK(source != "human" || !rank.contains("task") || rounds == 1, R.where(),
             ": rank.task names one labelling task; with \"rounds\" > 1 each round labels its own samples (leave rank.task out)");
  const double heldout = rank.value("heldout", 0.1);
  const bool do_rl = R.has("rl"), do_dpo = R.has("dpo");
  // The reward model is RL's reward and the evaluation's judge (learned reward, win rates, best-of-N):
  // trained whenever there are rankings, unless a DPO-only pipeline names its judge in eval.reward.
  const Json& eval_section = R.section("eval");
  RLHF_CHECK(!eval_section.contains("reward") || eval_section["reward"].is_string(), R.where(),
             ": eval.reward must be a reward model directory (a string)");
  const std::string eval_reward = eval_section.contains("reward") ? R.subst(eval_section["reward"].get<std::string>()) : "";
  RLHF_CHECK(eval_reward.empty() || fs::exists(fs::path(eval_reward) / "config.json") || opts.dry_run, R.where(),
             ": eval.reward ", eval_reward, " is not a reward model directory (no config.json)");
  const bool train_rm = do_rl || (do_dpo && eval_reward.empty());
  RLHF_CHECK(!do_rl || R.has("prompts") || have_world, R.where(), ": \"rl\" needs \"prompts\"");
  const std::string prompts = R.has("prompts") ? R.str("prompts") : (have_world ? R.path("world/prompts.jsonl").string() : "");
  std::string policy = sft, policy_key = sft_key, rm_dir, dpo_dir, heldout_file, rl_name;
  std::vector<fs::path> train_parts, held_parts;
  std::vector<std::pair<std::string, std::string>> eval_policies;
  Json rater_stats;
  std::string round1_checkpoints;
  std::vector<std::string> pref_keys;
  auto rl_command = [&](const std::string& algo, const Json& rl, const std::string& start,
                        const std::vector<std::string>& reward_args, const std::string& out) {
    auto b = with_template({algo, "--policy", start});
    b.insert(b.end(), reward_args.begin(), reward_args.end());
    for (auto& x : {std::string("--ref-model"), sft, std::string("--prompts"), prompts, std::string("--chat"), std::string("--out"), out})
      b.push_back(x);
    auto more2 = R.options(rl, {"policy", "reward", "ref_model", "prompts", "out", "chat", "reward_judge", "constitution"}, "rl");
    b.insert(b.end(), more2.begin(), more2.end());
    return b;
  };
  for (int64_t r = 1; r <= rounds; ++r) {
    const std::string rd = "round" + std::to_string(r);
    R.vars_["round"] = R.path(rd).string();
    ensure_directory(R.path(rd));
    std::string rank_key, sample_key;
    fs::path rankings = R.path(rd + "/rankings.jsonl");
    if (source == "simulated" || source == "human" || source == "ai" || source == "mix") {
      const Json& s = R.section("sample");
      auto a = std::vector<std::string>{"generate", "--model", policy, "--prompts", prompts, "--chat", "--out",
                                        R.path(rd + "/samples.jsonl").string()};
      if (!chat_template.empty()) a.insert(a.end(), {"--chat-template", chat_template});
      auto more = R.options(s, {"model", "prompts", "out", "chat"}, "sample");
      a.insert(a.end(), more.begin(), more.end());
      if (!s.contains("seed")) a.insert(a.end(), {"--seed", std::to_string(1000 + r)});
      auto sk = R.stage(rd + "/sample", a, R.path(rd + "/samples.jsonl"), {policy_key}, false);
      auto simulated_rank = [&](const std::string& name, const Json& sec, const fs::path& samples, const fs::path& out,
                                const fs::path& stats) {
        std::vector<std::string> b = {"world", "rank", "--world", R.path("world/world.json").string(), "--samples",
                                      samples.string(), "--out", out.string(), "--stats", stats.string(), "--seed",
                                      std::to_string(sec.value("seed", rank.value("seed", 7)) + r)};
        b.insert(b.end(), {"--agreement", format_number(sec.value("agreement", rank.value("agreement", Json(0.75))))});
        return R.stage(name, b, out, {sk}, false);
      };
      if (source == "ai") {
        rank_key = judge_stage(rd + "/rank", rank, R.path(rd + "/samples.jsonl"), rankings, {sk});
        rank_key = ai_stats_stage(rd + "/ai_stats", rankings, "", {rank_key}, R.path(rd + "/ai_stats.json"));
        if (!opts.dry_run) {
          Json st = read_json_file(R.path(rd + "/ai_stats.json"), "AI labeller statistics");
          if (r == 1) ai_feedback["rank"] = st;
          rater_stats = {{"measured_agreement", st.value("gold_agreement", Json(nullptr))}};
        }
      } else if (source == "mix") {
        // Each part labels the samples its "where" selects (e.g. people or simulated raters for helpfulness,
        // the AI judge for harmlessness, as Constitutional AI trained its preference model).
        const Json parts = rank.value("parts", Json::array());
        RLHF_CHECK(parts.is_array() && !parts.empty(), R.where(), ": rank.source \"mix\" needs \"parts\": [{\"source\": "
                   "\"simulated\" | \"ai\", \"where\": {\"family\": [...]}, ...}, ...]");
        std::vector<fs::path> part_samples, part_rankings;
        for (size_t p = 0; p < parts.size(); ++p) {
          RLHF_CHECK(parts[p].is_object(), R.where(), ": rank.parts[", p, "] must be an object");
          const std::string ps = parts[p].value("source", std::string());
          RLHF_CHECK(ps == "ai" || (ps == "simulated" && have_world), R.where(), ": rank.parts[", p,
                     "].source must be \"ai\" or (with the demo world) \"simulated\"");
          part_samples.push_back(R.path(rd + "/mix/part" + std::to_string(p) + "_samples.jsonl"));
          part_rankings.push_back(R.path(rd + "/mix/part" + std::to_string(p) + "_rankings.jsonl"));
        }
        ensure_directory(R.path(rd + "/mix"));
        auto split = R.stage(rd + "/mix/split", {}, part_samples.back(), {sk, parts.dump()}, false,
                             [&] { split_samples(R.path(rd + "/samples.jsonl"), parts, part_samples, R.where()); });
        std::vector<std::string> keys = {split};
        for (size_t p = 0; p < parts.size(); ++p) {
          const std::string name = rd + "/mix/part" + std::to_string(p);
          if (parts[p]["source"] == "ai") {
            keys.push_back(judge_stage(name, parts[p], part_samples[p], part_rankings[p], {split}));
            keys.back() = ai_stats_stage(name + "/ai_stats", part_rankings[p], "", {keys.back()},
                                         R.path(rd + "/mix/part" + std::to_string(p) + "_ai_stats.json"));
            if (!opts.dry_run && r == 1)
              ai_feedback["mix_part" + std::to_string(p)] =
                  read_json_file(R.path(rd + "/mix/part" + std::to_string(p) + "_ai_stats.json"), "AI labeller statistics");
          } else {
            keys.push_back(simulated_rank(name, parts[p], part_samples[p], part_rankings[p],
                                          R.path(rd + "/mix/part" + std::to_string(p) + "_stats.json")));
            if (!opts.dry_run)
              rater_stats = read_json_file(R.path(rd + "/mix/part" + std::to_string(p) + "_stats.json"), "rater statistics");
          }
        }
        rank_key = R.stage(rd + "/rank", {}, rankings, keys, false, [&] { concat_jsonl(part_rankings, rankings); });
      } else if (source == "human") {
        HumanRankPaths hp;
        hp.samples = R.path(rd + "/samples.jsonl");
        hp.task_given = rank.contains("task");
        RLHF_CHECK(!hp.task_given || rank["task"].is_string(), R.where(), ": rank.task must be a task directory (a string)");
        hp.task_dir = hp.task_given ? fs::path(R.subst(rank["task"].get<std::string>())) : R.path(rd + "/label");
        hp.rankings = rankings;
        hp.world_json = have_world ? R.path("world/world.json").string() : "";
        hp.where = R.where();
        rank_key = R.stage(rd + "/rank", {}, rankings, {sk, rank.dump()}, false, [&] {
          Json st = collect_human_rankings(rank, hp);
          write_json_atomic(R.path(rd + "/label_status.json"), st["status"]);
          if (st.contains("gold")) write_json_atomic(R.path(rd + "/rank_stats.json"), st["gold"]);
        });
        if (!opts.dry_run && fs::exists(R.path(rd + "/rank_stats.json")))
          rater_stats = read_json_file(R.path(rd + "/rank_stats.json"), "rater statistics");
      } else {
        rank_key = simulated_rank(rd + "/rank", rank, R.path(rd + "/samples.jsonl"), rankings, R.path(rd + "/rank_stats.json"));
        if (!opts.dry_run) rater_stats = read_json_file(R.path(rd + "/rank_stats.json"), "rater statistics");
      }
      sample_key = sk;
    } else {
      std::vector<std::string> files;
      if (rank.contains("files")) files = rank["files"].get<std::vector<std::string>>();
      else if (rank.contains("file")) files = {rank["file"].get<std::string>()};
      RLHF_CHECK(int64_t(files.size()) >= r, R.where(), ": rank.source \"file\" needs one rankings file per round (",
                 rounds, "): \"file\" or \"files\": [...]");
      std::string f = R.subst(files[size_t(r - 1)]);
      RLHF_CHECK(fs::exists(f), R.where(), ": rankings file ", f, " does not exist");
      rank_key = R.stage(rd + "/rank", {}, rankings, {R.fingerprint(f) + f}, false,
                         [&] { concat_jsonl({f}, rankings); });
    }
    // held-out split; the reward model and DPO train on every round's training part so far
    fs::path tr = R.path(rd + "/pref_train_round.jsonl"), he = R.path(rd + "/pref_heldout.jsonl");
    auto split_key = R.stage(rd + "/split", {}, he, {rank_key, std::to_string(heldout)}, false, [&] {
      split_rankings(rankings, heldout, tr, he);
    });
    train_parts.push_back(tr);
    pref_keys.push_back(split_key);
    fs::path pref = R.path(rd + "/pref_train.jsonl");
    auto pref_key = R.stage(rd + "/preferences", {}, pref, pref_keys, false, [&] { concat_jsonl(train_parts, pref); });
    heldout_file = he.string();

    // reward model (from SFT, as InstructGPT)
    std::string rm_key;
    if (train_rm) {
      rm_dir = R.path(rd + "/rm").string();
      auto a = with_template({"rm", "--model", sft, "--data", pref.string(), "--eval-data", he.string(), "--out", rm_dir});
      auto more = R.options(R.section("reward"), {"model", "data", "eval_data", "out"}, "reward");
      a.insert(a.end(), more.begin(), more.end());
      rm_key = R.stage(rd + "/rm", a, fs::path(rm_dir) / "config.json", {sft_key, pref_key, split_key}, true);
    }
    if (do_rl) {
      // RL from the current policy, KL leash to SFT
      Json rl = R.section("rl");
      std::string algo = rl.value("algo", std::string("ppo"));
      RLHF_CHECK(algo == "ppo" || algo == "grpo" || algo == "rloo", R.where(), ": rl.algo must be ppo, grpo or rloo");
      rl.erase("algo");
      // Where RL starts in rounds after the first: the latest policy (default), or SFT again (a fresh
      // policy against the reward model retrained on every round's rankings; the samples of the round
      // still come from the latest policy, so the new labels cover what it learned to exploit).
      const std::string init = rl.value("init", std::string("latest"));
      RLHF_CHECK(init == "latest" || init == "sft", R.where(), ": rl.init must be \"latest\" or \"sft\"");
      rl.erase("init");
      const std::string start = init == "sft" ? sft : policy, start_key = init == "sft" ? sft_key : policy_key;
      if (r == 1 && !rl.contains("keep_last")) rl["keep_last"] = 0;  // every checkpoint: the over-optimisation curve
      std::string out = R.path(rd + "/" + algo).string();
      auto b = rl_command(algo, rl, start, {"--reward", rm_dir}, out);
      policy_key = R.stage(rd + "/" + algo, b, product(out, rl), {start_key, rm_key, sft_key}, true);
      policy = out;
      rl_name = algo;
      if (r == 1) round1_checkpoints = (fs::path(out) / "checkpoints").string();
      if (rounds > 1) eval_policies.push_back({algo + "_" + rd, out});
    }
    if (do_dpo) {
      dpo_dir = R.path(rd + "/dpo").string();
      auto a = with_template({"dpo", "--model", sft, "--data", pref.string(), "--out", dpo_dir});
      auto more = R.options(R.section("dpo"), {"model", "data", "out"}, "dpo");
      a.insert(a.end(), more.begin(), more.end());
      R.stage(rd + "/dpo", a, product(dpo_dir, R.section("dpo")), {sft_key, pref_key}, true);
      if (rounds > 1) eval_policies.push_back({"dpo_" + rd, dpo_dir});
    }
    // The RLAIF arm (round 1): the same samples labelled by the AI judge, then a reward model, RL and DPO
    // exactly as above, and with "direct": true RL whose reward is the judge's score itself.
    if (r == 1 && R.has("rlaif")) {
      RLHF_CHECK(!sample_key.empty(), R.where(), ": \"rlaif\" labels the round's samples; it needs rank.source "
                 "\"simulated\", \"human\", \"ai\" or \"mix\" (not \"file\")");
      const Json& ai = R.section("rlaif");
      ensure_directory(R.path(rd + "/rlaif"));
      fs::path ar = R.path(rd + "/rlaif/rankings.jsonl");
      Json jsec = ai;
      for (const char* k : {"direct", "direct_rl", "rl", "dpo"}) jsec.erase(k);
      auto jk = judge_stage(rd + "/rlaif/judge", jsec, R.path(rd + "/samples.jsonl"), ar, {sample_key});
      auto stk = ai_stats_stage(rd + "/rlaif/ai_stats", ar, source == "simulated" ? rankings : fs::path(), {jk, rank_key},
                                R.path(rd + "/rlaif/ai_stats.json"));
      if (!opts.dry_run) ai_feedback["rlaif"] = read_json_file(R.path(rd + "/rlaif/ai_stats.json"), "AI labeller statistics");
      fs::path atr = R.path(rd + "/rlaif/pref_train.jsonl"), ahe = R.path(rd + "/rlaif/pref_heldout.jsonl");
      auto ask = R.stage(rd + "/rlaif/split", {}, ahe, {jk, stk, std::to_string(heldout)}, false,
                         [&] { split_rankings(ar, heldout, atr, ahe); });
      std::string arm_key;
      const std::string arm = R.path(rd + "/rlaif/rm").string();
      if (do_rl || (do_dpo && eval_reward.empty())) {
        auto a = with_template({"rm", "--model", sft, "--data", atr.string(), "--eval-data", ahe.string(), "--out", arm});
        auto more = R.options(R.section("reward"), {"model", "data", "eval_data", "out"}, "reward");
        a.insert(a.end(), more.begin(), more.end());
        arm_key = R.stage(rd + "/rlaif/rm", a, fs::path(arm) / "config.json", {sft_key, ask}, true);
      }
      // The arm trains with the rl and dpo sections' settings; "rlaif": {"rl": {...}, "dpo": {...}} overrides some.
      auto overridden = [&](const char* name) {
        Json sec = R.section(name);
        const Json over = ai.value(name, Json::object());
        RLHF_CHECK(over.is_object(), R.where(), ": rlaif.", name, " must be an object of ", name, " options");
        for (auto& [k, v] : over.items()) sec[k] = v;
        return sec;
      };
      Json rl = overridden("rl");
      const Json dpo_sec = overridden("dpo");
      const std::string algo = rl.value("algo", std::string("ppo"));
      rl.erase("algo");
      rl.erase("init");
      if (do_rl) {
        std::string out = R.path(rd + "/rlaif_" + algo).string();
        R.stage(rd + "/rlaif_" + algo, rl_command(algo, rl, sft, {"--reward", arm}, out), product(out, rl),
                {sft_key, arm_key}, true);
        extra_policies.push_back({"rlaif-" + algo, out});
      }
      if (do_dpo) {
        std::string out = R.path(rd + "/rlaif_dpo").string();
        auto a = with_template({"dpo", "--model", sft, "--data", atr.string(), "--out", out});
        auto more = R.options(dpo_sec, {"model", "data", "out"}, "rlaif.dpo");
        a.insert(a.end(), more.begin(), more.end());
        R.stage(rd + "/rlaif_dpo", a, product(out, dpo_sec), {sft_key, ask}, true);
        extra_policies.push_back({"rlaif-dpo", out});
      }
      if (ai.value("direct", false)) {
        RLHF_CHECK(do_rl, R.where(), ": rlaif.direct trains RL against the judge's score: it needs \"rl\"");
        Json drl = rl;
        for (auto& [k, v] : ai.value("direct_rl", Json::object()).items()) drl[k] = v;
        std::string out = R.path(rd + "/rlaif_direct_" + algo).string();
        std::vector<std::string> reward = {"--reward-judge", judge_of(ai, "rlaif"), "--constitution", constitution_of(ai, "rlaif")};
        R.stage(rd + "/rlaif_direct_" + algo, rl_command(algo, drl, sft, reward, out), product(out, drl), {sft_key}, true);
        extra_policies.push_back({"rlaif-direct-" + algo, out});
      }
    }
  }

  // 5. evaluation and report
  if (!R.has("eval_prompts") && !have_world) {
    log_info("no \"eval_prompts\": evaluation skipped");
    return Json();
  }
  const std::string eval_prompts = R.has("eval_prompts") ? R.str("eval_prompts") : R.path("world/eval_prompts.jsonl").string();
  std::vector<std::pair<std::string, std::string>> pol;
  if (!base.empty() && base != sft) pol.push_back({"base", base});
  pol.push_back({"sft", sft_eval});
  if (rounds > 1) {
    for (auto& p : eval_policies) pol.push_back(p);
  } else {
    if (do_rl) pol.push_back({rl_name, policy});
    if (do_dpo) pol.push_back({"dpo", dpo_dir});
  }
  for (auto& p : extra_policies) pol.push_back(p);
  Json extra = {{"title", "rlhf pipeline: " + R.run_dir()}, {"run_dir", R.run_dir()}, {"config", config}};
  Json curves = Json::array();
  add_curve(curves, R.path("base/metrics.jsonl"), "Pretraining", "loss", {"loss", "eval_loss"});
  add_curve(curves, R.path("sft/metrics.jsonl"), "SFT", "loss", {"loss", "eval_loss"});
  add_curve(curves, R.path("round1/rm/metrics.jsonl"), "Reward model (round 1)", "value",
            {"loss", "eval_loss", "accuracy", "eval_accuracy"});
  add_curve(curves, R.path("round1/" + rl_name + "/metrics.jsonl"), "RL (round 1): reward model score and KL", "value",
            {"objective/scores", "objective/kl", "objective/rlhf_reward"});
  add_curve(curves, R.path("round1/dpo/metrics.jsonl"), "DPO (round 1)", "value",
            {"loss", "rewards/accuracies", "rewards/margins", "eval_loss"});
  extra["curves"] = curves;
  if (!rater_stats.is_null()) {
    extra["reward_model"] = {{"rater_agreement", rater_stats.value("measured_agreement", Json(nullptr))},
                             {"rater_agreement_target", rater_stats.value("target_agreement", Json(nullptr))}};
    const bool people = source == "human" && !rank.value("simulate", false);
    extra["notes"] = Json::array(
        {people ? "Rankings come from people labelling in rlhf label. The reward model's held-out accuracy is measured "
                  "against their labels; the gold rater's own accuracy on the same labels is its ceiling."
                : source == "human"
                    ? "Rankings come from simulated raters labelling through rlhf label's HTTP API: Plackett-Luce over the "
                      "gold score with noise calibrated to the target pairwise agreement. The reward model's held-out "
                      "accuracy is measured against these noisy labels; the gold rater's own accuracy on the same labels "
                      "is its ceiling."
                    : "Rankings come from simulated raters: Plackett-Luce over the gold score with noise calibrated to the "
                      "target pairwise agreement. The reward model's held-out accuracy is measured against these noisy "
                      "labels; the gold rater's own accuracy on the same labels is its ceiling.",
         "Every policy samples one response per evaluation prompt at temperature 1 with the same seeds; KL is "
         "log pi(y|x) - log pi_sft(y|x) summed over the response (nats per sequence); win rates count ties as half.",
         "Best-of-N samples N responses from SFT and keeps the one the learned reward likes best; its KL to SFT is "
         "the analytic log N - (N-1)/N."});
  }
  if (!ai_feedback.empty()) {
    extra["ai_feedback"] = ai_feedback;
    extra["notes"].push_back("AI labels come from rlhf judge: the judge model's probabilities of the options of a "
                             "constitution's multiple-choice question, averaged over both orders; its agreement with the "
                             "gold order and with the simulated raters is measured on the same samples (pairs both order "
                             "strictly). The judge never reads the gold rater.");
  }
  extra["timings"] = R.timings_;
  if (!opts.dry_run) write_json_atomic(R.path("report_extra.json"), extra);
  std::vector<std::string> a = {"eval", "--no-table", "--prompts", eval_prompts, "--reference", "sft", "--out", R.path("eval").string(),
                                "--extra", R.path("report_extra.json").string()};
  for (auto& [n, d] : pol) a.insert(a.end(), {"--policy", n + "=" + d});
  if (!eval_reward.empty()) a.insert(a.end(), {"--reward", eval_reward, "--heldout", heldout_file});
  else if (!rm_dir.empty()) a.insert(a.end(), {"--reward", rm_dir, "--heldout", heldout_file});
  if (have_world) a.insert(a.end(), {"--world", R.path("world/world.json").string()});
  if (!round1_checkpoints.empty()) a.insert(a.end(), {"--checkpoints", round1_checkpoints, "--checkpoints-name", rl_name});
  if (!chat_template.empty()) a.insert(a.end(), {"--chat-template", chat_template});
  Json eval_opts = R.section("eval");
  eval_opts.erase("reward");  // the judge: passed above
  auto more = R.options(eval_opts, {"prompts", "reference", "out", "extra", "policy", "reward", "world",
                                            "checkpoints", "heldout"}, "eval");
  a.insert(a.end(), more.begin(), more.end());
  std::vector<std::string> deps;
  for (auto& [k, v] : R.keys_)
    if (k != "eval") deps.push_back(k + "=" + v);
  R.stage("eval", a, R.path("eval/eval.json"), deps, false);
  if (opts.dry_run) return Json();
  // The report again, now with every stage's time.
  Json results = read_json_file(R.path("eval/eval.json"), "evaluation results");
  results["timings"] = R.timings_;
  write_json_atomic(R.path("eval/eval.json"), results);
  write_report(results, R.path("eval"));
  return results;
}

Json demo_config(const std::string& run_dir) {
  return Json::parse(R"JSON({
  "_about": "rlhf demo: a synthetic assistant world, a tiny base model pretrained on it, SFT, SL-CAI (critique and revision under the world's constitution), one round of sampling, simulated human ranking and AI ranking by the base model as judge, reward models, PPO and DPO on each, PPO on the judge's score (direct RLAIF), then evaluation against the world's gold rater.",
  "run_dir": "RUN_DIR",
  "world": {"seed": 1, "pretrain_docs": 30000, "sft_examples": 60, "train_prompts": 1000, "eval_prompts": 200,
            "judge_docs": 8000, "score_docs": 3000, "critique_docs": 4000},
  "pretrain": {"text": "${world}/pretrain.jsonl", "vocab_size": 512, "arch": "llama", "n_layer": 4, "n_embd": 128,
               "n_head": 4, "seq_len": 128, "n_ctx": 128, "epochs": 2, "batch_size": 16, "lr": 0.002,
               "save_steps": 200, "seed": 1},
  "sft": {"data": "${world}/sft.jsonl", "epochs": 1, "batch_size": 16, "lr": 0.0002, "seed": 1},
  "sample": {"n": 8, "max_new_tokens": 24, "temperature": 1.0},
  "rank": {"source": "simulated", "agreement": 0.75, "heldout": 0.1, "seed": 7},
  "reward": {"epochs": 3, "batch_size": 16, "lr": 0.001, "seed": 1},
  "rl": {"algo": "ppo", "iterations": 60, "rollout_batch": 64, "max_new_tokens": 24, "lr": 0.00015, "kl_coef": 0.05,
         "normalize_scores": true, "missing_eos_penalty": 1.0, "ppo_epochs": 4, "save_steps": 10, "seed": 1,
         "ptx_data": "${world}/sft.jsonl", "ptx_coef": 1.0, "ptx_batch": 8},
  "dpo": {"epochs": 2, "batch_size": 16, "lr": 0.0001, "beta": 0.2, "seed": 1},
  "cai": {"rounds": 2, "max_new_tokens": 24, "data": "add", "start_rl_from": "sft", "seed": 1},
  "rlaif": {"seed": 1, "direct": true, "label_temperature": 0.3},
  "eval": {"max_new_tokens": 24, "best_of_n": 64, "best_of_n_prompts": 48, "seed": 1234}
})JSON")
      .patch(Json::array({{{"op", "replace"}, {"path", "/run_dir"}, {"value", run_dir}}}));
}

}  // namespace rlhf
