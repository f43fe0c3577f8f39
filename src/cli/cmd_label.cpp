// `rlhf label new | serve | status | export | raters | simulate`: people rank sampled responses in a
// web app this binary serves (src/label/); the rankings go to rlhf rm / rlhf dpo.
#include <cmath>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/signals.h"
#include "label/client.h"
#include "label/items.h"
#include "label/server.h"
#include "label/simulate.h"
#include "label/task.h"

namespace rlhf::cli {

namespace {

struct LabelOpts {
  std::string samples, out, task, raters = "rater1", guidelines, flags, reward, chat_template, aggregate = "none";
  std::string world, name;
  label::TaskOptions t;
  label::ServerOptions server;
  bool chat = false, as_json = false;
  double agreement = 0.75;
  uint64_t sim_seed = 7;
};

// The InstructGPT labelling interface's per-response flags (Ouyang et al. 2022, Appendix B), shortened.
const char* kDefaultFlags =
    "fails to follow the instruction,inappropriate for a customer assistant,made-up facts,harmful advice,"
    "sexual content,violent content,denigrates a protected class,expresses an opinion,expresses a moral judgment";

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= s.size()) {
    size_t b = s.find(',', a);
    if (b == std::string::npos) b = s.size();
    std::string x = s.substr(a, b - a);
    size_t i = x.find_first_not_of(' '), j = x.find_last_not_of(' ');
    if (i != std::string::npos) out.push_back(x.substr(i, j - i + 1));
    a = b + 1;
  }
  return out;
}

void print_urls(const std::string& dir, const std::string& base) {
  for (auto& [name, url] : label::rater_urls(dir, base))
    std::printf("%-12s %s\n", name.c_str(), url.c_str());
  std::fflush(stdout);
}

void run_new(LabelOpts& o) {
  if (!o.guidelines.empty()) o.t.guidelines = read_file(o.guidelines, "guidelines");
  o.t.flags = split_list(o.flags);
  int64_t unpaired = 0;
  auto items = label::items_from_samples(o.samples, o.t.mode, o.chat, &unpaired);
  if (unpaired) log_info(unpaired, " samples had an odd number of responses: their last one is left out of the pairs");
  RLHF_CHECK(o.t.order == "given" || o.t.order == "uncertain", "--order ", o.t.order, " is not known; use given or uncertain");
  RLHF_CHECK(o.t.order != "uncertain" || !o.reward.empty(), "--order uncertain needs --reward RM_DIR (the current reward model)");
  if (o.t.order == "uncertain") {
    RewardModel rm = load_reward_model(o.reward);
    auto tok = load_tokenizer_for(o.reward, "", rm.model->config());
    label::prioritise_uncertain(items, rm, *tok, o.chat_template);
    log_info("ordered ", items.size(), " items by the doubt of the reward model ", o.reward, " (most uncertain first)");
  }
  auto tokens = label::TaskStore::create(o.out, items, o.t, split_list(o.raters), label::samples_about(o.samples));
  log_info("created a labelling task in ", o.out, ": ", items.size(), " items (", o.t.mode, " mode), ", tokens.size() - 1,
           " raters, overlap ", o.t.overlap, "; tokens in ", (fs::path(o.out) / "raters.json").string(), " (mode 0600)");
  std::printf("Start the server with `rlhf label serve --task %s`, then open (keep these secret):\n", o.out.c_str());
  print_urls(o.out, "http://127.0.0.1:" + std::to_string(o.server.port));
}

void run_serve(LabelOpts& o) {
  label::TaskStore store(o.task);
  label::LabelServer srv(store, o.server);
  srv.bind();
  if (!label::is_loopback_host(o.server.host))
    log_warn("listening on ", o.server.host, ", not on loopback: anyone who can reach this port can try tokens; use it only "
             "on a network you trust (or behind an HTTPS proxy)");
  auto c = store.counts();
  log_info("serving ", o.task, " at ", srv.base_url(), ": ", c.items, " items, ", c.labels, " labels so far; Ctrl-C stops");
  print_urls(o.task, srv.base_url());
  install_stop_handlers();
  std::thread watcher([&] {
    while (!stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    srv.stop();
  });
  srv.serve();
  set_stop_requested(true);
  watcher.join();
  log_info("server stopped; ", store.counts().labels, " labels stored in ", o.task);
}

std::string fmt(const Json& v, const char* f = "%.3f") {
  if (!v.is_number()) return "-";
  char b[32];
  std::snprintf(b, sizeof b, f, v.get<double>());
  return b;
}

void run_status(LabelOpts& o) {
  label::TaskStore store(o.task);
  Json s = store.status();
  if (o.as_json) {
    std::printf("%s\n", s.dump(2).c_str());
    return;
  }
  std::printf("task %s: %lld items (%s mode), overlap %lld; %lld labels, %lld skips, %lld items complete, %lld leased now\n",
              o.task.c_str(), (long long)s["items"].get<int64_t>(), s["mode"].get<std::string>().c_str(),
              (long long)s["overlap"].get<int64_t>(), (long long)s["labels"].get<int64_t>(),
              (long long)s["skips"].get<int64_t>(), (long long)s["complete_items"].get<int64_t>(),
              (long long)s["leased"].get<int64_t>());
  const Json& a = s["agreement"];
  std::printf("agreement on %lld items labelled by two raters or more: pairwise %s (%lld pairs), Kendall's tau %s, "
              "Krippendorff's alpha (ordinal) %s, Kendall's W %s\n",
              (long long)a["items_with_overlap"].get<int64_t>(), fmt(a["pairwise"]).c_str(), (long long)a["pairs"].get<int64_t>(),
              fmt(a["kendall_tau"]).c_str(), fmt(a["krippendorff_alpha"]).c_str(), fmt(a["kendall_w"]).c_str());
  std::printf("%-16s %6s %6s %6s %7s %9s %12s\n", "rater", "done", "skip", "leased", "s/item", "shared", "agreement");
  for (auto& r : s["raters"]) {
    std::string ag = r["agreement"].is_number() ? fmt(r["agreement"])
                                                : "not enough data";
    std::string name = r["name"].get<std::string>() + (r["active"].get<bool>() ? "" : " (revoked)");
    std::printf("%-16s %6lld %6lld %6lld %7s %9lld %12s\n", name.c_str(), (long long)r["done"].get<int64_t>(),
                (long long)r["skipped"].get<int64_t>(), (long long)r["leased"].get<int64_t>(),
                fmt(r["median_seconds"], "%.1f").c_str(), (long long)r["overlapping"].get<int64_t>(), ag.c_str());
  }
  std::printf("(a rater's agreement is shown from %lld items shared with others on)\n", (long long)s["min_overlap"].get<int64_t>());
}

void run_export(LabelOpts& o) {
  label::TaskStore store(o.task);
  Json r = store.export_labels(o.out, o.aggregate);
  log_info("wrote ", r["records"].get<int64_t>(), " records (", o.aggregate, ") from ", r["labels"].get<int64_t>(),
           " labels to ", o.out,
           r["dropped_all_tied"].get<int64_t>() ? "; left out " + std::to_string(r["dropped_all_tied"].get<int64_t>()) +
                                                      " rankings with every response tied (no preference)"
                                                : std::string(),
           r["dropped_identical_pair"].get<int64_t>() ? "; left out " + std::to_string(r["dropped_identical_pair"].get<int64_t>()) +
                                                            " pairs of identical responses"
                                                      : std::string());
}

void run_simulate(LabelOpts& o) {
  label::TaskStore store(o.task);
  World w = World::load(o.world);
  Json sec = label::read_secrets(o.task);
  label::ClientOptions c;
  c.host = o.server.host;
  c.port = o.server.port;
  for (auto& r : sec["raters"]) c.tokens.push_back(r["token"].get<std::string>());
  double tau = 0;
  auto policy = label::world_rater_policy(w, store.items(), store.options().mode, o.agreement, o.sim_seed, &tau);
  auto st = label::run_rater_clients(c, policy);
  RLHF_CHECK(st.error.empty(), "simulated raters: ", st.error);
  std::printf("%s\n", Json({{"labels", st.labels}, {"duplicates", st.duplicates}, {"retries", st.retries},
                            {"noise_tau", tau}, {"seconds", st.seconds},
                            {"labels_per_second", st.seconds > 0 ? st.labels / st.seconds : 0.0},
                            {"p50_ms", label::percentile(st.pair_ms, 50)}, {"p99_ms", label::percentile(st.pair_ms, 99)}})
                          .dump()
                          .c_str());
}

}  // namespace

Command add_label(CLI::App& root) {
  auto o = std::make_shared<LabelOpts>();
  auto* app = root.add_subcommand("label", "Human preference labelling: a ranking web app served by this binary, "
                                           "with a task database, overlap, agreement figures and an export for rlhf rm / dpo");
  app->require_subcommand(1);

  auto* nw = app->add_subcommand("new", "Create a labelling task (SQLite, in --out) from samples (rlhf generate --n K, or "
                                        "{\"prompt\", \"responses\": [...]} lines); prints one URL per rater");
  nw->add_option("--samples", o->samples, "samples JSONL")->required();
  nw->add_option("--out", o->out, "task directory (task.db, raters.json)")->required();
  nw->add_option("--raters", o->raters, "rater names, comma-separated")->capture_default_str();
  nw->add_option("--overlap", o->t.overlap, "different raters per item (agreement needs 2 or more)")->capture_default_str();
  nw->add_option("--guidelines", o->guidelines, "labelling guidelines (text or Markdown file), one click away in the app");
  nw->add_option("--mode", o->t.mode, "rank: order the K responses (ties allowed) | pairs: A vs B on a five-point scale")
      ->capture_default_str();
  nw->add_flag("--likert", o->t.likert, "also ask for a 1-7 score per response");
  o->flags = kDefaultFlags;
  nw->add_option("--flags", o->flags, "per-response flags, comma-separated (\"\" = none)")->capture_default_str();
  nw->add_option("--lease-seconds", o->t.lease_seconds, "an item handed out and not labelled this long goes back to the queue")
      ->capture_default_str();
  nw->add_option("--min-overlap", o->t.min_overlap, "shared items before a rater's agreement with the others is shown")
      ->capture_default_str();
  nw->add_option("--order", o->t.order, "given: the samples' order | uncertain: the items the --reward model separates "
                                        "least first (the labels that teach it most)")->capture_default_str();
  nw->add_option("--reward", o->reward, "reward model directory for --order uncertain");
  nw->add_option("--chat-template", o->chat_template, "chat template for scoring message prompts with --reward");
  nw->add_flag("--chat", o->chat, "the samples were generated with --chat: a text prompt is one user turn (shown and exported so)");
  nw->add_option("--seed", o->t.seed, "seed of the raters' response orders")->capture_default_str();
  nw->add_option("--port", o->server.port, "port for the printed URLs")->capture_default_str();

  auto* sv = app->add_subcommand("serve", "Serve a task's web app and JSON API (see the README for the endpoints)");
  sv->add_option("--task", o->task, "task directory")->required();
  sv->add_option("--host", o->server.host, "address to listen on (anything but loopback lets others try tokens)")
      ->capture_default_str();
  sv->add_option("--port", o->server.port, "TCP port (0 = any free port)")->capture_default_str();
  sv->add_option("--threads-http", o->server.threads, "connections served at once")->capture_default_str();

  auto* st = app->add_subcommand("status", "Progress per rater, time per item and agreement (pairwise, Kendall's tau, "
                                           "Krippendorff's alpha, Kendall's W)");
  st->add_option("--task", o->task, "task directory")->required();
  st->add_flag("--json", o->as_json, "print the figures as JSON (what /api/admin/status returns)");

  auto* ex = app->add_subcommand("export", "Write the labels as rankings JSONL for rlhf rm / rlhf dpo (pairs mode: chosen/"
                                           "rejected with p_chosen), rater, time, flags, Likert and comments kept");
  ex->add_option("--task", o->task, "task directory")->required();
  ex->add_option("--out", o->out, "rankings JSONL")->required();
  ex->add_option("--aggregate", o->aggregate, "none: one record per label | mean-rank | ranked-pairs: one consensus "
                                              "record per item (the raters' own rankings kept)")->capture_default_str();

  auto* rt = app->add_subcommand("raters", "Change the team while a task runs: add NAME (prints the new URL), revoke "
                                           "NAME (its token stops working, its labels stay), list");
  rt->require_subcommand(1);
  auto* add = rt->add_subcommand("add", "Add a rater (or give a revoked one a new token)");
  auto* rev = rt->add_subcommand("revoke", "Revoke a rater's token and free their leased items");
  auto* ls = rt->add_subcommand("list", "List the raters");
  for (auto* s : {add, rev, ls}) s->add_option("--task", o->task, "task directory")->required();
  for (auto* s : {add, rev}) s->add_option("name", o->name, "rater name")->required();
  add->add_option("--port", o->server.port, "port for the printed URL")->capture_default_str();

  auto* sim = app->add_subcommand("simulate", "Label a served task with the demo world's simulated raters through the "
                                              "HTTP API (the requests a browser makes), one client per rater token");
  sim->add_option("--task", o->task, "task directory (for the tokens and items)")->required();
  sim->add_option("--world", o->world, "world.json (the gold rater)")->required();
  sim->add_option("--host", o->server.host, "server address")->capture_default_str();
  sim->add_option("--port", o->server.port, "server port")->capture_default_str();
  sim->add_option("--agreement", o->agreement, "raters' pairwise agreement with the gold order")->capture_default_str();
  sim->add_option("--seed", o->sim_seed, "rater noise seed")->capture_default_str();

  return {app, [o, nw, sv, st, ex, add, rev, ls, sim] {
            if (nw->parsed()) run_new(*o);
            if (sv->parsed()) run_serve(*o);
            if (st->parsed()) run_status(*o);
            if (ex->parsed()) run_export(*o);
            if (sim->parsed()) run_simulate(*o);
            if (add->parsed()) {
              label::TaskStore s(o->task);
              std::string tok = s.add_rater(o->name);
              std::printf("%-12s http://127.0.0.1:%d/#token=%s\n", o->name.c_str(), o->server.port, tok.c_str());
            }
            if (rev->parsed()) {
              label::TaskStore(o->task).revoke_rater(o->name);
              log_info("revoked ", o->name, ": their token no longer works; their labels stay");
            }
            if (ls->parsed())
              for (auto& r : label::TaskStore(o->task).raters())
                std::printf("%s%s\n", r["name"].get<std::string>().c_str(), r["active"].get<bool>() ? "" : " (revoked)");
          }};
}

}  // namespace rlhf::cli
