#include "pipeline/human.h"

#include <chrono>
#include <optional>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/signals.h"
#include "io/jsonl.h"
#include "label/client.h"
#include "label/items.h"
#include "label/server.h"
#include "label/simulate.h"
#include "label/task.h"

namespace rlhf {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> rater_names(const Json& rank, bool simulate, const std::string& where) {
  if (!rank.contains("raters")) {
    RLHF_CHECK(simulate, where, ": rank.source \"human\" needs \"raters\": [\"alice\", \"bob\", ...] (who will label)");
    return {"sim1", "sim2", "sim3", "sim4"};
  }
  const Json& r = rank["raters"];
  RLHF_CHECK(r.is_array() && !r.empty(), where, ": rank.raters must be a list of names");
  std::vector<std::string> out;
  for (auto& x : r) {
    RLHF_CHECK(x.is_string(), where, ": rank.raters must be a list of names (strings)");
    out.push_back(x.get<std::string>());
  }
  return out;
}

// With the demo world: each exported record gets the gold score of its responses (as `rlhf world rank`
// writes them), so the evaluation can report the gold rater's own accuracy on the held-out labels; and
// the raters' agreement with the gold order over pairs whose gold scores differ.
Json add_gold(const fs::path& rankings, const World& world) {
  auto recs = read_jsonl(rankings);
  JsonlWriter w(rankings);
  int64_t pairs = 0, agree = 0;
  for (auto& r : recs) {
    Json j = r.value;
    const std::string prompt = prompt_user_text(j["prompt"], r.where());
    std::vector<std::string> resp = j.contains("responses") ? j["responses"].get<std::vector<std::string>>()
                                                            : std::vector<std::string>{j["chosen"], j["rejected"]};
    std::vector<double> gold;
    for (auto& x : resp) gold.push_back(world.rate(prompt, x).score);
    j["gold"] = gold;
    // Pairs mode's records: chosen above rejected.
    std::vector<int> rank = j.contains("ranking") ? label::ranks_of(j["ranking"], resp.size()) : std::vector<int>{0, 1};
    for (size_t a = 0; a < resp.size(); ++a)
      for (size_t b = 0; b < resp.size(); ++b)
        if (rank[a] < rank[b] && gold[a] != gold[b]) {
          ++pairs;
          agree += gold[a] > gold[b];
        }
    w.write(j);
  }
  w.commit();
  return {{"records", int64_t(recs.size())}, {"pairs_with_distinct_gold", pairs},
          {"measured_agreement", pairs ? Json(double(agree) / double(pairs)) : Json(nullptr)}};
}

}  // namespace

Json collect_human_rankings(const Json& rank, const HumanRankPaths& p) {
  const bool simulate = rank.value("simulate", false);
  // 1. the task: made from the samples once, then reused (labels survive any number of reruns)
  if (!label::TaskStore::exists(p.task_dir)) {
    RLHF_CHECK(!p.task_given, p.where, ": rank.task ", p.task_dir.string(), " holds no labelling task (no task.db)");
    label::TaskOptions t;
    t.mode = rank.value("mode", t.mode);
    t.overlap = rank.value("overlap", t.overlap);
    t.likert = rank.value("likert", t.likert);
    t.lease_seconds = rank.value("lease_seconds", t.lease_seconds);
    t.min_overlap = rank.value("min_overlap", t.min_overlap);
    if (rank.contains("flags")) t.flags = rank["flags"].get<std::vector<std::string>>();
    if (rank.contains("guidelines")) t.guidelines = read_file(rank["guidelines"].get<std::string>(), "rank.guidelines");
    auto items = label::items_from_samples(p.samples, t.mode, /*chat=*/true);
    label::TaskStore::create(p.task_dir, items, t, rater_names(rank, simulate, p.where), label::samples_about(p.samples));
    log_info("created the labelling task ", p.task_dir.string(), " (", items.size(), " items)");
  } else if (!p.task_given) {
    label::TaskStore s(p.task_dir);
    RLHF_CHECK(s.about().value("samples_fingerprint", "") == file_fingerprint(p.samples), p.task_dir.string(),
               ": this labelling task was made from other samples than ", p.samples.string(),
               " (they were sampled again); move the task away (its labels stay in it) to label the new samples");
  }
  label::TaskStore store(p.task_dir);
  const auto c0 = store.counts();
  const int64_t quota = rank.value("min_labels", c0.items * store.options().overlap);
  RLHF_CHECK(quota >= 1, p.where, ": rank.min_labels must be at least 1");

  // 2. the server, for as long as labels are missing
  label::ServerOptions so;
  so.host = rank.value("host", so.host);
  so.port = rank.value("port", simulate ? 0 : so.port);
  label::LabelServer srv(store, so);
  srv.bind();
  std::thread serving([&] { srv.serve(); });
  struct Stop {
    label::LabelServer& s;
    std::thread& t;
    ~Stop() {
      s.stop();
      if (t.joinable()) t.join();
    }
  } stop_at_exit{srv, serving};
  log_info("labelling ", p.task_dir.string(), " at ", srv.base_url(), ": ", c0.labels, " of ", quota,
           " labels so far; open (keep secret):");
  for (auto& [name, url] : label::rater_urls(p.task_dir, srv.base_url())) log_info("  ", name, ": ", url);

  // 3. simulated raters, through the same HTTP requests as the app
  std::optional<World> world;
  if (!p.world_json.empty()) world.emplace(World::load(p.world_json));
  if (simulate) {
    RLHF_CHECK(world, p.where, ": rank.simulate needs the demo \"world\" (its gold rater)");
    Json sec = label::read_secrets(p.task_dir);
    label::ClientOptions co;
    co.host = so.host == "0.0.0.0" ? "127.0.0.1" : so.host;
    co.port = std::stoi(srv.base_url().substr(srv.base_url().rfind(':') + 1));
    for (auto& r : sec["raters"]) co.tokens.push_back(r["token"].get<std::string>());
    double tau = 0;
    auto policy = label::world_rater_policy(*world, store.items(), store.options().mode, rank.value("agreement", 0.75),
                                            uint64_t(rank.value("seed", 7)), &tau);
    auto st = label::run_rater_clients(co, policy);
    RLHF_CHECK(st.error.empty(), "simulated raters: ", st.error);
    log_info("simulated raters (noise tau ", tau, ") labelled ", st.labels, " items through ", srv.base_url(), " in ",
             st.seconds, " s (p50 ", label::percentile(st.pair_ms, 50), " ms, p99 ", label::percentile(st.pair_ms, 99),
             " ms per next + submit)");
  }

  // 4. wait for the quota (or for nothing to be left that anyone could label)
  install_stop_handlers();
  auto last_log = std::chrono::steady_clock::now();
  for (;;) {
    auto c = store.counts();
    if (c.labels >= quota || c.assignable == 0) {
      if (c.labels < quota) log_info("no item is left that a rater could still label; going on with ", c.labels, " labels");
      break;
    }
    RLHF_CHECK(!stop_requested(), "labelling interrupted with ", c.labels, " of ", quota,
               " labels; they are kept in ", p.task_dir.string(), ": run the same pipeline command to go on");
    if (std::chrono::steady_clock::now() - last_log > std::chrono::seconds(30)) {
      log_info("labels: ", c.labels, " of ", quota, " (", c.leased, " items being labelled now)");
      last_log = std::chrono::steady_clock::now();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }

  // 5. the rankings for the reward model and DPO
  Json ex = store.export_labels(p.rankings, rank.value("aggregate", std::string("none")));
  log_info("exported ", ex["records"].get<int64_t>(), " rankings from ", ex["labels"].get<int64_t>(), " human labels to ",
           p.rankings.string());
  Json out = {{"status", store.status()}};
  if (world) {
    Json g = add_gold(p.rankings, *world);
    if (simulate) g["target_agreement"] = rank.value("agreement", 0.75);
    log_info("the raters agree with the gold order on ", g["measured_agreement"].dump(), " of ",
             g["pairs_with_distinct_gold"].get<int64_t>(), " ranked pairs whose gold scores differ");
    out["gold"] = g;
  }
  return out;
}

}  // namespace rlhf
