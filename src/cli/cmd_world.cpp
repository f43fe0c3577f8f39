// `rlhf world generate | rate | rank`: the demo world (src/world/world.h): its data files, its gold
// rater, and simulated human raters that rank sampled responses with Bradley-Terry noise.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/config_file.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/lock.h"
#include "core/log.h"
#include "data/prompts.h"
#include "io/jsonl.h"
#include "world/world.h"

namespace rlhf::cli {

namespace {

struct WorldOpts {
  WorldConfig world;
  std::string out, world_file, samples, stats;
  RaterConfig rater;
};

void run_generate(const WorldOpts& o) {
  DirLock lock(o.out);
  World w(o.world);
  w.write(o.out);
  if (o.world.style == "open") {
    log_info("wrote the open demo world (seed ", o.world.seed, ") to ", o.out, ": world.json, sft.jsonl (", o.world.sft_examples,
             " demonstrations), prompts.jsonl (", o.world.train_prompts, " from the training prompts), eval_prompts.jsonl (",
             o.world.eval_prompts, " from the held-out prompts, ", w.to_json()["heldout_prompts"].get<int64_t>(), " distinct)");
    return;
  }
  log_info("wrote the demo world (seed ", o.world.seed, ") to ", o.out, ": world.json, pretrain.jsonl (",
           o.world.pretrain_docs, " dialogues + knowledge-base facts",
           o.world.judge_docs + o.world.score_docs + o.world.critique_docs > 0
               ? " + " + std::to_string(o.world.judge_docs) + " comparisons, " + std::to_string(o.world.score_docs) +
                     " scores, " + std::to_string(o.world.critique_docs) + " critiques"
               : std::string(),
           "), sft.jsonl (", o.world.sft_examples, " demonstrations), prompts.jsonl (", o.world.train_prompts,
           "), eval_prompts.jsonl (", o.world.eval_prompts, "), constitution.json");
}

void run_rate(const WorldOpts& o) {
  World w = World::load(o.world_file);
  std::unique_ptr<JsonlWriter> out;
  if (!o.out.empty()) {
    remove_stale_temporaries_of(o.out);
    out = std::make_unique<JsonlWriter>(o.out);
  }
  std::vector<GoldRating> all;
  for (auto& r : read_jsonl(o.samples)) {
    std::string prompt = prompt_user_text(r.value.contains("prompt") ? r.value["prompt"] : Json(), r.where());
    Json gold = Json::array();
    for (auto& resp : sample_responses(r)) {
      all.push_back(w.rate(prompt, resp));
      gold.push_back(all.back().to_json());
    }
    if (out) {
      Json line = r.value;
      line["gold"] = gold;
      out->write(line);
    }
  }
  if (out) out->commit();
  auto s = summarize_gold(all);
  std::printf("%s\n", s.to_json().dump().c_str());
}

void run_rank(const WorldOpts& o) {
  World w = World::load(o.world_file);
  remove_stale_temporaries_of(o.out);
  JsonlWriter out(o.out);  // the output is checked now, not after the work
  auto records = read_jsonl(o.samples);
  std::vector<std::vector<double>> groups;
  std::vector<std::vector<std::string>> responses;
  std::vector<Json> prompts;
  for (auto& r : records) {
    RLHF_CHECK(r.value.contains("prompt"), r.where(), ": no \"prompt\" field");
    std::string prompt = prompt_user_text(r.value["prompt"], r.where());
    auto resp = sample_responses(r);
    RLHF_CHECK(resp.size() >= 2, r.where(), ": ranking needs at least 2 responses per prompt, found ", resp.size(),
               " (sample with --n 2 or more)");
    std::vector<double> g;
    for (auto& x : resp) g.push_back(w.rate(prompt, x).score);
    groups.push_back(std::move(g));
    responses.push_back(std::move(resp));
    prompts.push_back(r.value["prompt"].is_string() ? Json::array({{{"role", "user"}, {"content", prompt}}}) : r.value["prompt"]);
  }
  double tau = calibrate_rater_noise(groups, o.rater.agreement);
  auto rankings = simulated_rankings(groups, tau, o.rater.seed);
  int64_t pairs = 0, agree = 0;
  for (size_t i = 0; i < groups.size(); ++i) {
    const auto& rk = rankings[i];
    for (size_t a = 0; a < rk.size(); ++a)
      for (size_t b = a + 1; b < rk.size(); ++b) {
        double ga = groups[i][size_t(rk[a])], gb = groups[i][size_t(rk[b])];
        if (std::abs(ga - gb) < 1e-12) continue;
        ++pairs;
        agree += ga > gb;
      }
    out.write({{"prompt", prompts[i]}, {"responses", responses[i]}, {"ranking", rk}, {"gold", groups[i]}});
  }
  out.commit();
  double measured = pairs ? double(agree) / double(pairs) : NAN;
  Json stats = {{"records", int64_t(groups.size())},
                {"target_agreement", o.rater.agreement},
                {"noise_tau", tau},
                {"pairs_with_distinct_gold", pairs},
                {"measured_agreement", std::isfinite(measured) ? Json(measured) : Json(nullptr)}};
  if (!o.stats.empty()) write_file_atomic(o.stats, stats.dump(2) + "\n");
  log_info("ranked ", groups.size(), " prompts with simulated raters: noise tau ", tau, ", agreement with the gold order ",
           measured, " on ", pairs, " pairs (target ", o.rater.agreement, "); wrote ", o.out);
}

}  // namespace

Command add_world(CLI::App& root) {
  auto o = std::make_shared<WorldOpts>();
  auto* app = root.add_subcommand("world", "The demo world: generate its data, rate responses with its gold rater, "
                                           "rank samples with simulated human raters");
  app->require_subcommand(1);
  auto* gen = app->add_subcommand("generate", "Write world.json, pretrain.jsonl, sft.jsonl, prompts.jsonl and "
                                              "eval_prompts.jsonl for a seed");
  add_config_option(gen);
  gen->add_option("--out", o->out, "output directory")->required();
  gen->add_option("--seed", o->world.seed, "world seed")->capture_default_str();
  gen->add_option("--style", o->world.style,
                  "tiny: for a tiny model pretrained on the world's corpus | open: for a pretrained model's free-form "
                  "answers (harmless and helpful families, a free-form gold rater, held-out eval prompts, no corpus)")
      ->check(CLI::IsMember({"tiny", "open"}))
      ->capture_default_str();
  gen->add_option("--known-creatures", o->world.known_creatures, "creatures in the knowledge base")->capture_default_str();
  gen->add_option("--unknown-creatures", o->world.unknown_creatures, "creatures asked about but never described")
      ->capture_default_str();
  gen->add_option("--pretrain-docs", o->world.pretrain_docs, "prompt + response documents in the pretraining corpus")
      ->capture_default_str();
  gen->add_option("--sft-examples", o->world.sft_examples, "good demonstrations in sft.jsonl")->capture_default_str();
  gen->add_option("--train-prompts", o->world.train_prompts, "prompts in prompts.jsonl (sampling, RL)")
      ->capture_default_str();
  gen->add_option("--eval-prompts", o->world.eval_prompts, "prompts in eval_prompts.jsonl")->capture_default_str();
  gen->add_option("--judge-docs", o->world.judge_docs, "corpus comparisons of two responses under a principle of "
                                                       "constitution.json, answered \"Response A/B\" (style tiny)")
      ->capture_default_str();
  gen->add_option("--score-docs", o->world.score_docs, "corpus answers rated 1-10 (style tiny)")->capture_default_str();
  gen->add_option("--critique-docs", o->world.critique_docs, "corpus critique -> revision conversations (style tiny)")
      ->capture_default_str();
  gen->add_option("--feedback-noise", o->world.feedback_noise, "share of those feedback documents whose verdict is wrong")
      ->capture_default_str();

  auto* rate = app->add_subcommand("rate", "Gold-rate sampled responses (JSONL with \"prompt\" and \"responses\" or "
                                           "\"response\"); prints the mean gold score and axis rates");
  rate->add_option("--world", o->world_file, "world.json")->required();
  rate->add_option("--samples", o->samples, "samples JSONL (e.g. from rlhf generate)")->required();
  rate->add_option("--out", o->out, "write the samples with a \"gold\" field per response");

  auto* rank = app->add_subcommand("rank", "Rank each prompt's sampled responses as simulated human raters would: by "
                                           "gold score with Bradley-Terry (Plackett-Luce) noise; writes ranking JSONL for "
                                           "rlhf rm / rlhf dpo");
  add_config_option(rank);
  rank->add_option("--world", o->world_file, "world.json")->required();
  rank->add_option("--samples", o->samples, "samples JSONL with at least 2 responses per prompt")->required();
  rank->add_option("--out", o->out, "rankings JSONL ({\"prompt\", \"responses\", \"ranking\" best first, \"gold\"})")
      ->required();
  rank->add_option("--agreement", o->rater.agreement,
                   "pairwise agreement of the raters with the gold order, in (0.5, 1]")->capture_default_str();
  rank->add_option("--seed", o->rater.seed, "rater noise seed")->capture_default_str();
  rank->add_option("--stats", o->stats, "write the raters' calibration and measured agreement (JSON)");
  return {app, [o, gen, rate, rank] {
            if (gen->parsed()) run_generate(*o);
            if (rate->parsed()) run_rate(*o);
            if (rank->parsed()) run_rank(*o);
          }};
}

}  // namespace rlhf::cli
