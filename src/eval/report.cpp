#include "eval/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string_view>
#include <utility>

#include "core/fs.h"

namespace rlhf {

// Helpers in a namespace of their own: the library is compiled as unity batches, where an anonymous
// namespace is shared with the other sources of the batch.
namespace report_impl {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- reading the results leniently: a missing, null or mistyped field reads as absent ----------

const Json& null_json() {
  static const Json j;
  return j;
}
const Json& empty_array() {
  static const Json j = Json::array();
  return j;
}
const Json& at(const Json& j, const char* key) {
  if (!j.is_object()) return null_json();
  auto it = j.find(key);
  return it == j.end() ? null_json() : *it;
}
const Json& array_at(const Json& j, const char* key) {
  const Json& v = at(j, key);
  return v.is_array() ? v : empty_array();
}
double num(const Json& j) { return j.is_number() ? j.get<double>() : kNaN; }
double num(const Json& j, const char* key) { return num(at(j, key)); }
// A string field; a number or boolean as JSON writes it; anything else `def`.
std::string text(const Json& j, const char* key, const std::string& def = "") {
  const Json& v = at(j, key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  return def;
}
std::vector<double> doubles(const Json& a) {
  std::vector<double> out;
  if (a.is_array())
    for (const Json& e : a) out.push_back(num(e));
  return out;
}
std::string dump(const Json& j, int indent) { return j.dump(indent, ' ', false, Json::error_handler_t::replace); }

const Json& policies_of(const Json& results) {
  RLHF_CHECK(results.is_object(), "evaluation results: expected a JSON object, got ", json_type_name(results));
  const Json& p = at(results, "policies");
  RLHF_CHECK(p.is_array(), "evaluation results: field \"policies\" must be an array of {\"name\", ...} (it is ",
             json_type_name(p), "); the eval stage writes it");
  return p;
}

std::string policy_name(const Json& p) { return text(p, "name", "-"); }

// ---- formatting ---------------------------------------------------------------------------------

std::string format_count(double v) {
  if (!std::isfinite(v)) return "-";
  if (v == std::floor(v) && std::abs(v) < 1e15) {
    char b[32];
    std::snprintf(b, sizeof b, "%.0f", v);
    return b;
  }
  return format_number(v);
}

std::string mean_ci(double mean, double ci) {
  if (!std::isfinite(mean)) return "-";
  return std::isfinite(ci) ? format_number(mean) + " \xC2\xB1 " + format_number(ci) : format_number(mean);
}

std::string format_seconds(double s) {
  if (!std::isfinite(s)) return "-";
  char b[48];
  if (s < 60) {
    std::snprintf(b, sizeof b, "%.1f s", s);
  } else {
    const long long t = std::llround(s);
    if (t < 3600) std::snprintf(b, sizeof b, "%lldm %02llds", t / 60, t % 60);
    else std::snprintf(b, sizeof b, "%lldh %02lldm %02llds", t / 3600, t / 60 % 60, t % 60);
  }
  return b;
}

size_t display_width(std::string_view s) {  // code points; enough for the names and numbers here
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return s;
}

// Markdown table cell: pipes escaped, newlines as <br>, < and & as entities (no raw HTML).
std::string md_cell(std::string_view s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '|': o += "\\|"; break;
      case '\n': o += "<br>"; break;
      case '\r': break;
      case '<': o += "&lt;"; break;
      case '&': o += "&amp;"; break;
      default: o += c;
    }
  }
  return o;
}

// A backtick fence longer than any run of backticks in `s`.
std::string fence_for(std::string_view s, size_t min_len) {
  size_t run = 0, longest = 0;
  for (char c : s) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return std::string(std::max(min_len, longest + 1), '`');
}
std::string md_code_block(std::string_view s, const char* lang) {
  const std::string f = fence_for(s, 3);
  std::string o = f + lang + "\n" + std::string(s);
  if (!s.empty() && s.back() != '\n') o += "\n";
  return o + f + "\n";
}
std::string md_inline_code(std::string_view s) {
  const std::string f = fence_for(s, 1);
  const std::string body = one_line(std::string(s));
  const bool pad = !body.empty() && (body.front() == '`' || body.back() == '`');
  return f + (pad ? " " : "") + body + (pad ? " " : "") + f;
}

std::string esc(std::string_view s) { return xml_escape(s); }

// ---- tables: built once, rendered for the terminal, markdown and HTML ---------------------------

struct Table {
  std::vector<std::string> header;
  std::vector<bool> right;  // right-aligned column (numbers)
  std::vector<std::vector<std::string>> rows;
};

std::string to_text(const Table& t) {
  std::vector<size_t> w(t.header.size(), 0);
  auto widen = [&](const std::vector<std::string>& r) {
    for (size_t c = 0; c < w.size() && c < r.size(); ++c) w[c] = std::max(w[c], display_width(one_line(r[c])));
  };
  widen(t.header);
  for (const auto& r : t.rows) widen(r);
  auto line = [&](const std::vector<std::string>& r) {
    std::string o;
    for (size_t c = 0; c < w.size(); ++c) {
      const std::string cell = c < r.size() ? one_line(r[c]) : "";
      const std::string pad(w[c] - display_width(cell), ' ');
      if (c) o += "  ";
      o += t.right[c] ? pad + cell : cell + pad;
    }
    while (!o.empty() && o.back() == ' ') o.pop_back();
    return o + "\n";
  };
  std::string o = line(t.header);
  std::vector<std::string> rule;
  for (size_t c = 0; c < w.size(); ++c) rule.push_back(std::string(w[c], '-'));
  o += line(rule);
  for (const auto& r : t.rows) o += line(r);
  return o;
}

std::string to_markdown(const Table& t) {
  std::string o;
  auto row = [&](const std::vector<std::string>& r) {
    o += '|';
    for (size_t c = 0; c < t.header.size(); ++c) {
      o += ' ';
      if (c < r.size()) o += md_cell(r[c]);
      o += " |";
    }
    o += '\n';
  };
  row(t.header);
  o += '|';
  for (size_t c = 0; c < t.header.size(); ++c) o += t.right[c] ? " ---: |" : " --- |";
  o += '\n';
  for (const auto& r : t.rows) row(r);
  return o;
}

std::string to_html(const Table& t) {
  std::string o = "<table>\n<thead><tr>";
  for (const auto& h : t.header) o += "<th>" + esc(h) + "</th>";
  o += "</tr></thead>\n<tbody>\n";
  for (const auto& r : t.rows) {
    o += "<tr>";
    for (size_t c = 0; c < t.header.size(); ++c) {
      const std::string cell = c < r.size() ? r[c] : "";
      o += (t.right[c] ? "<td class=\"num\">" : "<td>") + esc(cell) + "</td>";
    }
    o += "</tr>\n";
  }
  return o + "</tbody>\n</table>\n";
}

// helpful, honest, harmless, then any other axis a policy reports.
std::vector<std::string> axis_names(const Json& policies) {
  std::vector<std::string> names = {"helpful", "honest", "harmless"};
  for (const Json& p : policies) {
    const Json& axes = at(p, "axes");
    if (!axes.is_object()) continue;
    for (const auto& [k, v] : axes.items())
      if (std::find(names.begin(), names.end(), k) == names.end()) names.push_back(k);
  }
  return names;
}

// `full` (the reports) adds n and the model directory to the terminal's columns.
Table policy_table(const Json& results, bool full) {
  const Json& policies = policies_of(results);
  const std::vector<std::string> axes = axis_names(policies);
  Table t;
  auto col = [&](std::string h, bool right) { t.header.push_back(std::move(h)), t.right.push_back(right); };
  col("policy", false);
  if (full) col("n", true);
  col("gold reward (mean \xC2\xB1 95% CI)", true);
  col("learned reward", true);
  col("KL to SFT", true);
  col("win rate vs SFT", true);
  for (const auto& a : axes) col(a, true);
  if (full) col("model", false);
  for (const Json& p : policies) {
    std::vector<std::string> r;
    r.push_back(policy_name(p));
    if (full) r.push_back(format_count(num(p, "n")));
    r.push_back(mean_ci(num(p, "gold_mean"), num(p, "gold_ci95")));
    r.push_back(mean_ci(num(p, "reward_mean"), num(p, "reward_ci95")));
    r.push_back(mean_ci(num(p, "kl_mean"), num(p, "kl_ci95")));
    std::string win = format_percent(num(p, "win_rate_vs_sft"));
    if (const std::string judge = text(p, "win_rate_judge"); full && !judge.empty() && win != "-") win += " (" + judge + ")";
    r.push_back(win);
    for (const auto& a : axes) r.push_back(format_percent(num(at(p, "axes"), a.c_str())));
    if (full) r.push_back(text(p, "model", "-"));
    t.rows.push_back(std::move(r));
  }
  return t;
}

// Per prompt family (when the prompts carry one): each policy's gold score, axis rates and verdicts.
Table family_table(const Json& results) {
  Table t{{"family", "policy", "n", "gold reward", "helpful", "harmless", "verdicts"},
          {false, false, true, true, true, true, false}, {}};
  std::vector<std::string> fams;
  for (const Json& p : policies_of(results))
    if (const Json& f = at(p, "families"); f.is_object())
      for (const auto& [k, v] : f.items())
        if (std::find(fams.begin(), fams.end(), k) == fams.end()) fams.push_back(k);
  for (const auto& fam : fams)
    for (const Json& p : policies_of(results)) {
      const Json& f = at(at(p, "families"), fam.c_str());
      if (!f.is_object()) continue;
      std::vector<std::pair<int64_t, std::string>> v;
      if (const Json& vs = at(f, "verdicts"); vs.is_object())
        for (const auto& [k, n] : vs.items()) v.push_back({n.is_number() ? n.get<int64_t>() : 0, k});
      std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first > b.first; });
      std::string verdicts;
      for (auto& [n, k] : v) verdicts += (verdicts.empty() ? "" : ", ") + k + " " + std::to_string(n);
      t.rows.push_back({fam, policy_name(p), format_count(num(f, "n")), mean_ci(num(f, "gold_mean"), num(f, "gold_ci95")),
                        format_percent(num(at(f, "axes"), "helpful")), format_percent(num(at(f, "axes"), "harmless")),
                        verdicts});
    }
  return t;
}

struct RmMetric {
  const char* key;
  const char* name;
  bool percent;
  const char* meaning;
};
const RmMetric kRmMetrics[] = {
    {"heldout_accuracy", "held-out accuracy", true,
     "the reward model prefers the response the raters preferred, on held-out pairs"},
    {"gold_accuracy_on_heldout", "gold accuracy on held-out", true,
     "the gold reward prefers the response the raters preferred, on the same pairs: the ceiling for a model "
     "of the raters' noisy labels"},
    {"gold_order_accuracy", "gold order accuracy", true,
     "the reward model orders held-out pairs as the gold reward does (pairs with distinct gold scores)"},
    {"rater_agreement", "rater agreement", true, "the raters' preferences agree with the gold reward's order"},
    {"rater_agreement_target", "rater agreement (target)", true,
     "the agreement the simulated raters' noise was calibrated to"},
    {"heldout_pairs", "held-out pairs", false, "pairs the held-out accuracies are measured on"},
};

Table reward_model_table(const Json& rm) {
  Table t{{"metric", "value", "meaning"}, {false, true, false}, {}};
  for (const auto& m : kRmMetrics) {
    const Json& v = at(rm, m.key);
    if (v.is_null()) continue;
    t.rows.push_back({m.name, m.percent ? format_percent(num(v)) : format_count(num(v)), m.meaning});
  }
  for (const auto& [k, v] : rm.items()) {
    const bool known = std::any_of(std::begin(kRmMetrics), std::end(kRmMetrics), [&](const RmMetric& m) { return k == m.key; });
    if (known) continue;
    t.rows.push_back({k, v.is_number() ? format_number(num(v)) : v.is_string() ? v.get<std::string>() : dump(v, -1), ""});
  }
  return t;
}

// One sentence relating the reward model's held-out accuracy to its ceiling: the gold reward's own
// accuracy on the same labels, else the raters' agreement with the gold order ("" when either is missing).
std::string ceiling_sentence(const Json& rm) {
  const double acc = num(rm, "heldout_accuracy");
  double ceiling = num(rm, "gold_accuracy_on_heldout");
  std::string what = "the gold reward itself agrees with them on ";
  if (!std::isfinite(ceiling)) {
    ceiling = num(rm, "rater_agreement");
    what = "the raters agree with the gold order on ";
  }
  if (!std::isfinite(acc) || !std::isfinite(ceiling)) return "";
  std::string s = "The reward model agrees with the raters on " + format_percent(acc) + " of held-out pairs; " + what +
                  format_percent(ceiling) + ", the ceiling for a model of their noisy labels";
  if (ceiling > 0) s += " (" + format_percent(acc / ceiling) + " of the ceiling)";
  return s + ".";
}

// The AI labellers (rlhf judge) of the run: one row per arm ("rank", "rlaif", "mix_partN").
Table ai_feedback_table(const Json& ai) {
  Table t{{"labels", "judge", "comparisons", "position consistency", "agreement with gold order",
           "agreement with simulated raters", "comparisons/s"},
          {false, false, true, true, true, true, true},
          {}};
  if (!ai.is_object()) return t;
  for (const auto& [arm, v] : ai.items()) {
    if (!v.is_object()) continue;
    auto pct = [&](const char* k) { return v.contains(k) && v[k].is_number() ? format_percent(num(v[k])) : std::string("-"); };
    t.rows.push_back({arm, text(v, "labeller"), v.contains("comparisons") && v["comparisons"].is_number() ? format_count(num(v["comparisons"])) : "-",
                      pct("position_consistency"), pct("gold_agreement"), pct("rater_agreement"),
                      v.contains("comparisons_per_second") && v["comparisons_per_second"].is_number()
                          ? format_number(num(v["comparisons_per_second"]))
                          : "-"});
  }
  return t;
}

Table timings_table(const Json& timings) {
  Table t{{"stage", "time", "note"}, {false, true, false}, {}};
  double total = 0;
  for (const Json& e : timings) {
    const double s = num(e, "seconds");
    const bool skipped = at(e, "skipped").is_boolean() && at(e, "skipped").get<bool>();
    if (std::isfinite(s)) total += s;
    t.rows.push_back({text(e, "stage", "-"), format_seconds(s), skipped ? "skipped" : ""});
  }
  if (timings.size() > 1) t.rows.push_back({"total", format_seconds(total), ""});
  return t;
}

// ---- over-optimisation points -------------------------------------------------------------------

struct OverPoint {
  std::string method, label;
  double kl = kNaN, x = kNaN, gold = kNaN, reward = kNaN;
  bool analytic_kl = false;
};

std::vector<OverPoint> over_points(const Json& results) {
  const Json& oo = at(results, "overoptimization");
  std::vector<OverPoint> out;
  for (const auto& [key, method] : {std::pair{"ppo", "PPO"}, std::pair{"best_of_n", "best-of-n"}}) {
    for (const Json& e : array_at(oo, key)) {
      OverPoint p;
      p.method = method;
      p.label = text(e, "label");
      const double n = num(e, "n");
      if (p.label.empty() && std::isfinite(n)) p.label = "n = " + format_count(n);
      p.kl = num(e, "kl");
      if (!std::isfinite(p.kl) && std::string(key) == "best_of_n" && std::isfinite(n) && n >= 1) {
        p.kl = std::log(n) - (n - 1) / n;  // KL(best-of-n || base), Stiennon et al. 2020 / Gao et al. 2022
        p.analytic_kl = true;
      }
      p.x = std::isfinite(p.kl) ? std::sqrt(std::max(p.kl, 0.0)) : kNaN;  // estimates can dip below 0
      p.gold = num(e, "gold");
      p.reward = num(e, "reward");
      out.push_back(p);
    }
  }
  return out;
}

Table over_table(const std::vector<OverPoint>& pts) {
  Table t{{"method", "point", "KL to SFT", "\xE2\x88\x9AKL", "gold reward", "learned reward"},
          {false, false, true, true, true, true}, {}};
  for (const auto& p : pts)
    t.rows.push_back({p.method, p.label.empty() ? "-" : p.label,
                      format_number(p.kl) + (p.analytic_kl ? " (analytic)" : ""), format_number(p.x),
                      format_number(p.gold), format_number(p.reward)});
  return t;
}

const char* const kSqrtKlLabel = "\xE2\x88\x9A(KL to SFT)";

std::vector<Plot> over_plots(const std::vector<OverPoint>& pts) {
  std::vector<Plot> plots;
  for (const bool gold : {true, false}) {
    Plot plot;
    plot.title = gold ? "Gold reward vs \xE2\x88\x9AKL" : "Learned (proxy) reward vs \xE2\x88\x9AKL";
    plot.x_label = kSqrtKlLabel;
    plot.y_label = gold ? "gold reward" : "learned reward";
    bool any = false;
    for (const char* method : {"PPO", "best-of-n"}) {
      PlotSeries s;
      s.name = method;
      for (const auto& p : pts) {
        if (p.method != method) continue;
        const double y = gold ? p.gold : p.reward;
        s.x.push_back(p.x);
        s.y.push_back(y);
        any = any || (std::isfinite(p.x) && std::isfinite(y));
      }
      if (!s.x.empty()) plot.series.push_back(std::move(s));
    }
    if (any) plots.push_back(std::move(plot));
  }
  return plots;
}

std::vector<Plot> policy_plots(const Json& results) {
  Plot plot{"Policies: gold reward vs \xE2\x88\x9AKL", kSqrtKlLabel, "gold reward", {}};
  for (const Json& p : policies_of(results)) {
    const double kl = num(p, "kl_mean"), gold = num(p, "gold_mean");
    if (!std::isfinite(kl) || !std::isfinite(gold)) continue;
    PlotSeries s{policy_name(p), {std::sqrt(std::max(kl, 0.0))}, {gold}, true, false};
    plot.series.push_back(std::move(s));
  }
  if (plot.series.empty()) return {};
  return {plot};
}

std::vector<Plot> curve_plots(const Json& results) {
  std::vector<Plot> plots;
  const Json& curves = array_at(results, "curves");
  for (size_t i = 0; i < curves.size(); ++i) {
    const Json& c = curves[i];
    Plot plot{text(c, "title", "curve " + std::to_string(i + 1)), text(c, "x_label"), text(c, "y_label"), {}};
    for (const Json& sj : array_at(c, "series")) {
      PlotSeries s;
      s.name = text(sj, "name");
      s.y = doubles(at(sj, "y"));
      s.x = doubles(at(sj, "x"));
      if (!at(sj, "x").is_array())
        for (size_t k = 0; k < s.y.size(); ++k) s.x.push_back(double(k));
      const Json& m = at(sj, "markers");
      const Json& l = at(sj, "line");
      s.markers = m.is_boolean() ? m.get<bool>() : std::min(s.x.size(), s.y.size()) <= 40;
      s.line = l.is_boolean() ? l.get<bool>() : true;
      plot.series.push_back(std::move(s));
    }
    plots.push_back(std::move(plot));
  }
  return plots;
}

// A markdown summary of the curves (the plots themselves are in report.html).
Table curve_table(const std::vector<Plot>& plots) {
  Table t{{"plot", "series", "points", "first", "last", "min", "max"}, {false, false, true, true, true, true, true}, {}};
  for (const auto& p : plots) {
    for (const auto& s : p.series) {
      std::vector<double> ys;
      const size_t n = std::min(s.x.size(), s.y.size());
      for (size_t k = 0; k < n; ++k)
        if (std::isfinite(s.x[k]) && std::isfinite(s.y[k])) ys.push_back(s.y[k]);
      const bool e = ys.empty();
      t.rows.push_back({p.title, s.name, std::to_string(ys.size()), e ? "-" : format_number(ys.front()),
                        e ? "-" : format_number(ys.back()),
                        e ? "-" : format_number(*std::min_element(ys.begin(), ys.end())),
                        e ? "-" : format_number(*std::max_element(ys.begin(), ys.end()))});
    }
  }
  return t;
}

// ---- samples ------------------------------------------------------------------------------------

struct Response {
  std::string policy, text;
  double gold = kNaN, reward = kNaN;
};

// "base" first, then the policies in the order of the results table, then the rest.
std::vector<Response> responses_of(const Json& sample, const Json& policies) {
  const Json& rs = at(sample, "responses");
  std::vector<Response> out;
  if (!rs.is_object()) return out;
  std::vector<std::string> order;
  auto add = [&](const std::string& k) {
    if (rs.contains(k) && std::find(order.begin(), order.end(), k) == order.end()) order.push_back(k);
  };
  add("base");
  for (const Json& p : policies) add(policy_name(p));
  for (const auto& [k, v] : rs.items()) add(k);
  for (const auto& k : order) {
    const Json& v = rs[k];
    Response r;
    r.policy = k;
    if (v.is_string()) {
      r.text = v.get<std::string>();
    } else {
      r.text = text(v, "text");
      r.gold = num(v, "gold");
      r.reward = num(v, "reward");
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string scores(const Response& r) {
  std::string s;
  if (std::isfinite(r.gold)) s += "gold " + format_number(r.gold);
  if (std::isfinite(r.reward)) s += (s.empty() ? "" : ", ") + std::string("reward ") + format_number(r.reward);
  return s;
}

std::string report_title(const Json& results) { return one_line(text(results, "title", "rlhf evaluation")); }

const char* const kResultsNote =
    "Gold reward, learned reward and KL to SFT: means over the evaluation prompts \xC2\xB1 the half-width of a 95% "
    "confidence interval. Win rate: how often the policy's response beats the SFT policy's response to the same "
    "prompt, judged by the gold reward unless the table names another judge.";

const char* const kCss = R"(
body{font:15px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;max-width:1200px;margin:0 auto;padding:1.5em}
h1{font-size:1.7em;margin:0 0 .2em}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em;margin:1.2em 0 .4em}
.meta{color:#666;margin:0}
nav{margin:.8em 0}nav a{margin-right:1em;color:#1f5fa8;text-decoration:none}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}tbody tr:nth-child(even) td{background:#fafafa}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.plots{display:flex;flex-wrap:wrap;gap:1em}
figure.plot{margin:0}figure.plot svg{max-width:100%;height:auto;border:1px solid #eee}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;border:1px solid #e5e5e5;border-radius:3px;padding:.5em .7em;margin:.2em 0;font-size:.88em}
.sample{border-top:1px solid #eee;margin-top:1em}
.family{font-weight:normal;color:#777;margin-left:.6em}
.responses{display:grid;grid-template-columns:repeat(auto-fit,minmax(18em,1fr));gap:.8em;margin-top:.5em}
.label{font-size:.85em;color:#555}.label b{color:#222}.score{color:#777;margin-left:.5em}
ul.notes li{margin:.2em 0}
)";


std::string terminal_table(const Json& results) {
  return to_text(policy_table(results, /*full=*/false));
}

std::vector<Plot> all_plots(const Json& results) {
  std::vector<Plot> all = policy_plots(results);
  for (auto& p : over_plots(over_points(results))) all.push_back(std::move(p));
  for (auto& p : curve_plots(results)) all.push_back(std::move(p));
  return all;
}

std::string markdown_report(const Json& results) {
  const Json& policies = policies_of(results);
  std::string o = "# " + report_title(results) + "\n\n";
  if (const std::string run = text(results, "run_dir"); !run.empty()) o += "Run: " + md_inline_code(run) + "\n\n";

  // 1. Results.
  o += "## Results\n\n" + to_markdown(policy_table(results, /*full=*/true)) + "\n";
  o += std::string(kResultsNote) + "\n\n";
  if (const Table ft = family_table(results); !ft.rows.empty())
    o += "### By prompt family\n\n" + to_markdown(ft) + "\n";

  // 2. Reward model.
  const Json& rm = at(results, "reward_model");
  if (rm.is_object() && !rm.empty()) {
    o += "## Reward model\n\n" + to_markdown(reward_model_table(rm)) + "\n";
    if (const std::string s = ceiling_sentence(rm); !s.empty()) o += s + "\n\n";
  }
  if (const Table aft = ai_feedback_table(at(results, "ai_feedback")); !aft.rows.empty())
    o += "## AI feedback\n\n" + to_markdown(aft) + "\n";

  // 3. Over-optimisation.
  const std::vector<OverPoint> pts = over_points(results);
  if (!pts.empty()) {
    o += "## Over-optimisation\n\nGold and learned reward against \xE2\x88\x9A(KL to SFT) for PPO checkpoints "
         "and best-of-n (Gao et al. 2022); the plots are in report.html.\n\n" +
         to_markdown(over_table(pts)) + "\n";
  }

  // 4. Curves (summarised; the plots are in report.html).
  const std::vector<Plot> curves = curve_plots(results);
  if (!curves.empty()) o += "## Training curves\n\nPlotted in report.html.\n\n" + to_markdown(curve_table(curves)) + "\n";

  // 5. Samples.
  const Json& samples = array_at(results, "samples");
  if (!samples.empty()) {
    o += "## Samples\n\n";
    for (size_t i = 0; i < samples.size(); ++i) {
      const Json& s = samples[i];
      o += "### Sample " + std::to_string(i + 1);
      if (const std::string f = one_line(text(s, "family")); !f.empty()) o += " \xC2\xB7 " + md_cell(f);
      o += "\n\n**Prompt**\n\n" + md_code_block(text(s, "prompt"), "text") + "\n";
      for (const auto& r : responses_of(s, policies)) {
        o += "**" + md_cell(one_line(r.policy)) + "**";
        if (const std::string sc = scores(r); !sc.empty()) o += " \xE2\x80\x94 " + sc;
        o += "\n\n" + md_code_block(r.text, "text") + "\n";
      }
    }
  }

  // 6. Timings, notes, configuration.
  const Json& timings = array_at(results, "timings");
  if (!timings.empty()) o += "## Timings\n\n" + to_markdown(timings_table(timings)) + "\n";
  const Json& notes = array_at(results, "notes");
  if (!notes.empty()) {
    o += "## Notes\n\n";
    for (const Json& n : notes) o += "- " + (n.is_string() ? n.get<std::string>() : dump(n, -1)) + "\n";
    o += "\n";
  }
  const Json& config = at(results, "config");
  if (!config.is_null())
    o += "## Configuration\n\n<details><summary>resolved configuration</summary>\n\n" +
         md_code_block(dump(config, 2), "json") + "\n</details>\n";
  return o;
}

std::string html_report(const Json& results) {
  const Json& policies = policies_of(results);
  const std::string title = report_title(results);
  auto figures = [](const std::vector<Plot>& plots) {
    std::string o = "<div class=\"plots\">\n";
    for (const auto& p : plots) o += "<figure class=\"plot\">\n" + render_svg(p) + "\n</figure>\n";
    return o + "</div>\n";
  };

  const Json& rm = at(results, "reward_model");
  const bool has_rm = rm.is_object() && !rm.empty();
  const std::vector<OverPoint> pts = over_points(results);
  const std::vector<Plot> curves = curve_plots(results);
  const Json& samples = array_at(results, "samples");
  const Json& timings = array_at(results, "timings");
  const Json& notes = array_at(results, "notes");
  const Json& config = at(results, "config");

  std::string o = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
                  esc(title) + "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n";
  o += "<h1>" + esc(title) + "</h1>\n";
  if (const std::string run = text(results, "run_dir"); !run.empty()) o += "<p class=\"meta\">run: <code>" + esc(run) + "</code></p>\n";
  o += "<nav><a href=\"#results\">results</a>";
  if (has_rm) o += "<a href=\"#reward-model\">reward model</a>";
  if (!pts.empty()) o += "<a href=\"#overoptimization\">over-optimisation</a>";
  if (!curves.empty()) o += "<a href=\"#curves\">training curves</a>";
  if (!samples.empty()) o += "<a href=\"#samples\">samples</a>";
  if (!timings.empty()) o += "<a href=\"#timings\">timings</a>";
  if (!notes.empty()) o += "<a href=\"#notes\">notes</a>";
  if (!config.is_null()) o += "<a href=\"#config\">configuration</a>";
  o += "</nav>\n";

  // 1. Results.
  o += "<section id=\"results\">\n<h2>Results</h2>\n" + to_html(policy_table(results, /*full=*/true));
  o += "<p>" + esc(kResultsNote) + "</p>\n";
  if (const Table ft = family_table(results); !ft.rows.empty()) o += "<h3>By prompt family</h3>\n" + to_html(ft);
  if (const auto plots = policy_plots(results); !plots.empty()) o += figures(plots);
  o += "</section>\n";

  // 2. Reward model.
  if (has_rm) {
    o += "<section id=\"reward-model\">\n<h2>Reward model</h2>\n" + to_html(reward_model_table(rm));
    if (const std::string s = ceiling_sentence(rm); !s.empty()) o += "<p>" + esc(s) + "</p>\n";
    o += "</section>\n";
  }
  if (const Table aft = ai_feedback_table(at(results, "ai_feedback")); !aft.rows.empty())
    o += "<section id=\"ai-feedback\">\n<h2>AI feedback</h2>\n" + to_html(aft) + "</section>\n";

  // 3. Over-optimisation.
  if (!pts.empty()) {
    o += "<section id=\"overoptimization\">\n<h2>Over-optimisation</h2>\n<p>Gold and learned reward against "
         "\xE2\x88\x9A(KL to SFT) for PPO checkpoints and best-of-n (Gao et al. 2022): over-optimisation shows "
         "as a learned reward that keeps rising while the gold reward flattens or falls.</p>\n";
    o += figures(over_plots(pts)) + to_html(over_table(pts)) + "</section>\n";
  }

  // 4. Curves.
  if (!curves.empty()) o += "<section id=\"curves\">\n<h2>Training curves</h2>\n" + figures(curves) + "</section>\n";

  // 5. Samples, side by side.
  if (!samples.empty()) {
    o += "<section id=\"samples\">\n<h2>Samples</h2>\n";
    for (size_t i = 0; i < samples.size(); ++i) {
      const Json& s = samples[i];
      o += "<div class=\"sample\">\n<h3>Sample " + std::to_string(i + 1);
      if (const std::string f = text(s, "family"); !f.empty()) o += "<span class=\"family\">" + esc(f) + "</span>";
      o += "</h3>\n<div class=\"label\">prompt</div>\n<pre class=\"prompt\">" + esc(text(s, "prompt")) + "</pre>\n";
      o += "<div class=\"responses\">\n";
      for (const auto& r : responses_of(s, policies)) {
        o += "<div class=\"response\"><div class=\"label\"><b>" + esc(r.policy) + "</b>";
        if (const std::string sc = scores(r); !sc.empty()) o += "<span class=\"score\">" + esc(sc) + "</span>";
        o += "</div>\n<pre>" + esc(r.text) + "</pre></div>\n";
      }
      o += "</div>\n</div>\n";
    }
    o += "</section>\n";
  }

  // 6. Timings, notes, configuration.
  if (!timings.empty()) o += "<section id=\"timings\">\n<h2>Timings</h2>\n" + to_html(timings_table(timings)) + "</section>\n";
  if (!notes.empty()) {
    o += "<section id=\"notes\">\n<h2>Notes</h2>\n<ul class=\"notes\">\n";
    for (const Json& n : notes) o += "<li>" + esc(n.is_string() ? n.get<std::string>() : dump(n, -1)) + "</li>\n";
    o += "</ul>\n</section>\n";
  }
  if (!config.is_null())
    o += "<section id=\"config\">\n<h2>Configuration</h2>\n<details><summary>resolved configuration</summary>\n<pre>" +
         esc(dump(config, 2)) + "</pre>\n</details>\n</section>\n";
  return o + "</body>\n</html>\n";
}
}  // namespace
}  // namespace report_impl


std::string format_number(double v) {
  if (!std::isfinite(v)) return "-";
  if (v == 0) v = 0.0;  // no "-0.000"
  const double a = std::abs(v);
  char b[48];
  if (a >= 1e6 || (a > 0 && a < 1e-3)) std::snprintf(b, sizeof b, "%.3g", v);
  else std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

std::string format_percent(double v) {
  if (!std::isfinite(v)) return "-";
  char b[48];
  std::snprintf(b, sizeof b, "%.1f%%", v * 100 == 0 ? 0.0 : v * 100);
  return b;
}

std::string results_table(const Json& results) { return report_impl::terminal_table(results); }
std::vector<Plot> report_plots(const Json& results) { return report_impl::all_plots(results); }
std::string render_report_markdown(const Json& results) { return report_impl::markdown_report(results); }
std::string render_report_html(const Json& results) { return report_impl::html_report(results); }

void write_report(const Json& results, const std::filesystem::path& dir) {
  // Both rendered before either is written: a malformed result leaves no half-updated pair behind.
  const std::string md = render_report_markdown(results);
  const std::string html = render_report_html(results);
  ensure_directory(dir);
  write_file_atomic(dir / "report.md", md);
  write_file_atomic(dir / "report.html", html);
}

}  // namespace rlhf
