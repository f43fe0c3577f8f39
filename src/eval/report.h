// The evaluation report: an evaluation's results (JSON, schema below) rendered as report.md (tables
// and samples), report.html (the same plus inline SVG plots; one self-contained file, no scripts)
// and the results table printed on the terminal.
//
// Results schema; every field but "policies" is optional, a missing or null number prints "-":
//   title, run_dir                         strings
//   config                                 any JSON, shown verbatim
//   policies[]        name, model, n, gold_mean, gold_ci95, reward_mean, reward_ci95, kl_mean,
//                     kl_ci95, win_rate_vs_sft (0..1), axes {helpful, honest, harmless, ...} (0..1)
//   reward_model      heldout_accuracy, rater_agreement, gold_accuracy_on_heldout,
//                     gold_order_accuracy (0..1), heldout_pairs; other keys are listed as they are
//   samples[]         prompt, family, responses {policy: {text, gold, reward} or a plain string}
//   curves[]          title, x_label, y_label, series[] {name, x[], y[], markers, line}
//   overoptimization  ppo[] {label, kl, gold, reward}, best_of_n[] {n, label, kl, gold, reward}
//                     (a best-of-n point without kl gets the analytic log n - (n-1)/n)
//   timings[]         stage, seconds, skipped
//   notes[]           strings
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "eval/svg.h"
#include "io/json.h"

namespace rlhf {

// Writes dir/report.md and dir/report.html (creating dir), each atomically.
void write_report(const Json& results, const std::filesystem::path& dir);

std::string render_report_markdown(const Json& results);
std::string render_report_html(const Json& results);

// The terminal table, fixed-width columns, one row per policy:
// policy | gold reward (mean ± 95% CI) | learned reward | KL to SFT | win rate vs SFT | helpful | honest | harmless
std::string results_table(const Json& results);

// Every plot of the HTML report, in the order they appear: policies (gold reward against sqrt KL),
// over-optimisation (gold and learned reward against sqrt KL, PPO and best-of-n), then "curves".
std::vector<Plot> report_plots(const Json& results);

// "0.400", "-" for NaN / inf; "%.3g" for magnitudes >= 1e6 or below 1e-3.
std::string format_number(double v);
// 0.71 -> "71.0%", "-" for NaN / inf.
std::string format_percent(double v);

}  // namespace rlhf
