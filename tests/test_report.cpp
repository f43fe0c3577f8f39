// The evaluation report: SVG plots (ticks, NaN / inf, empty and degenerate series), number
// formatting, the terminal results table, HTML escaping of model text, and write_report's two files
// with one <svg> per plot. Everything here runs in milliseconds and needs no model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "eval/report.h"
#include "eval/svg.h"
#include "io/json.h"
#include "test_util.h"

namespace rlhf {
namespace {

namespace fs = std::filesystem;
using test::expect_error;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + needle.size())) ++n;
  return n;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool well_formed_ish(const std::string& svg) {
  return svg.rfind("<svg", 0) == 0 && svg.size() >= 6 && svg.compare(svg.size() - 6, 6, "</svg>") == 0 &&
         count(svg, "<svg") == 1;
}

Json full_results() {
  return Json::parse(R"({
    "title": "rlhf demo",
    "run_dir": "runs/demo",
    "config": {"seed": 1, "ppo": {"kl_coef": 0.05}},
    "policies": [
      {"name": "sft", "model": "runs/demo/sft", "n": 128, "gold_mean": 0.4, "gold_ci95": 0.05,
       "reward_mean": 1.2, "reward_ci95": 0.1, "kl_mean": 0.0, "kl_ci95": 0.0,
       "axes": {"helpful": 0.8, "honest": 0.6, "harmless": 0.9}},
      {"name": "ppo", "model": "runs/demo/ppo", "n": 128, "gold_mean": 0.55, "gold_ci95": 0.04,
       "reward_mean": 2.5, "reward_ci95": 0.2, "kl_mean": 3.1, "kl_ci95": 0.4, "win_rate_vs_sft": 0.71,
       "axes": {"helpful": 0.85, "honest": 0.62, "harmless": 0.88}}
    ],
    "reward_model": {"heldout_accuracy": 0.71, "rater_agreement": 0.75, "gold_accuracy_on_heldout": 0.74,
                     "gold_order_accuracy": 0.8, "heldout_pairs": 200},
    "samples": [
      {"prompt": "What is 2+2? | answer", "family": "arithmetic",
       "responses": {"base": {"text": "<script>alert(1)</script>&", "gold": -1.0},
                     "sft": {"text": "4\nfour", "gold": 1.0}, "ppo": "4 ```"}}
    ],
    "curves": [
      {"title": "SFT", "x_label": "step", "y_label": "loss",
       "series": [{"name": "train loss", "x": [0, 1, 2, 3], "y": [2.0, 1.5, null, 1.1]},
                  {"name": "eval loss", "x": [0, 3], "y": [2.1, 1.3]}]},
      {"title": "PPO", "x_label": "step", "y_label": "reward",
       "series": [{"name": "reward", "y": [0.1, 0.4, 0.6]}]}
    ],
    "overoptimization": {
      "ppo": [{"label": "step 20", "kl": 2.0, "gold": 0.3, "reward": 1.0},
              {"label": "step 40", "kl": 6.0, "gold": 0.2, "reward": 2.0}],
      "best_of_n": [{"n": 1, "kl": 0.0, "gold": 0.1, "reward": 0.2}, {"n": 16, "gold": 0.4, "reward": 0.9}]
    },
    "timings": [{"stage": "sft", "seconds": 12.5, "skipped": false}, {"stage": "rm", "seconds": 125, "skipped": true}],
    "notes": ["tiny model; numbers are noisy"]
  })");
}

// ---- svg ----------------------------------------------------------------------------------------

TEST(ReportSvg, OnePathPerLineSeriesAndWellFormed) {
  Plot p{"loss", "step", "loss", {}};
  p.series.push_back({"a", {0, 1, 2, 3}, {1.0, 0.5, 0.3, 0.2}});
  p.series.push_back({"b", {0, 1, 2}, {0.9, 0.7, 0.1}, /*markers=*/false});
  p.series.push_back({"dots only", {0, 2}, {0.4, 0.6}, /*markers=*/true, /*line=*/false});
  const std::string svg = render_svg(p);
  EXPECT_TRUE(well_formed_ish(svg)) << svg.substr(0, 200);
  EXPECT_EQ(count(svg, "<path"), 2u);  // the two line series; the dots-only one draws circles
  EXPECT_EQ(count(svg, "<g class=\"series\""), 3u);
  EXPECT_NE(svg.find(">a</text>"), std::string::npos);  // legend
  EXPECT_NE(svg.find(">dots only</text>"), std::string::npos);
  EXPECT_NE(svg.find("#1f77b4"), std::string::npos);  // distinct colours
  EXPECT_NE(svg.find("#ff7f0e"), std::string::npos);
  EXPECT_NE(svg.find("#2ca02c"), std::string::npos);
  EXPECT_GE(count(svg, "<circle"), 4u + 2u);  // a's and the dots-only series' points
}

TEST(ReportSvg, NanAndInfAreSkippedNotPrinted) {
  Plot p{"noisy", "x", "y", {}};
  p.series.push_back({"s", {0, 1, kNaN, 3, 4, 5}, {1.0, kInf, 2.0, 3.0, -kInf, 2.5}});
  p.series.push_back({"all bad", {kNaN, kInf}, {1.0, 2.0}});
  const std::string svg = render_svg(p);
  EXPECT_TRUE(well_formed_ish(svg));
  const std::string l = lower(svg);
  EXPECT_EQ(l.find("nan"), std::string::npos);
  EXPECT_EQ(l.find("inf"), std::string::npos);
  EXPECT_EQ(count(svg, "<path"), 0u);  // no two finite points in a row: dots only
  EXPECT_EQ(count(svg, "<circle"), 3u + 2u);  // (0,1), (3,3), (5,2.5) plus two legend dots
}

TEST(ReportSvg, EmptySinglePointAndZeroRange) {
  for (const Plot& p : {Plot{"empty", "", "", {}}, Plot{"no points", "x", "y", {{"s", {}, {}}}},
                        Plot{"one point", "x", "y", {{"s", {2.0}, {5.0}}}},
                        Plot{"flat", "x", "y", {{"s", {0, 1, 2}, {3.0, 3.0, 3.0}}}},
                        Plot{"vertical", "x", "y", {{"s", {1, 1}, {0.0, 0.0}}}},
                        Plot{"", "", "", {{"", {-1e300, 1e300}, {1e-300, 2e-300}}}}}) {
    const std::string svg = render_svg(p, 320, 200);
    EXPECT_TRUE(well_formed_ish(svg)) << p.title;
    const std::string l = lower(svg);
    EXPECT_EQ(l.find("nan"), std::string::npos) << p.title;
    EXPECT_EQ(l.find("inf"), std::string::npos) << p.title;
  }
  const std::string one = render_svg(Plot{"one point", "x", "y", {{"s", {2.0}, {5.0}, /*markers=*/false}}});
  EXPECT_EQ(count(one, "<circle"), 1u);  // a lone point still shows, as a dot
  EXPECT_NE(render_svg(Plot{"empty", "", "", {}}).find("no data"), std::string::npos);
}

TEST(ReportSvg, TicksAreNiceAndCoverTheRange) {
  const auto t = nice_ticks(0.0, 1.0);
  ASSERT_GE(t.size(), 3u);
  EXPECT_DOUBLE_EQ(t.front(), 0.0);
  EXPECT_NEAR(t.back(), 1.0, 1e-12);
  for (size_t i = 1; i < t.size(); ++i) EXPECT_NEAR(t[i] - t[i - 1], 0.2, 1e-12);

  for (auto [lo, hi] : std::initializer_list<std::pair<double, double>>{
           {0.03, 0.97}, {-3.7, 12.2}, {1000.0, 1001.0}, {-0.004, -0.001}, {5.0, 5.0}, {0.0, 0.0}}) {
    const auto ticks = nice_ticks(lo, hi);
    ASSERT_GE(ticks.size(), 2u) << lo << " " << hi;
    EXPECT_LE(ticks.front(), lo);
    EXPECT_GE(ticks.back(), hi);
    EXPECT_LT(ticks.front(), ticks.back());
    const double step = ticks[1] - ticks[0];
    const double mant = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
    EXPECT_TRUE(std::abs(mant - 1) < 1e-6 || std::abs(mant - 2) < 1e-6 || std::abs(mant - 5) < 1e-6)
        << "step " << step << " for [" << lo << ", " << hi << "]";
  }
  EXPECT_EQ(nice_ticks(kNaN, 1.0), (std::vector<double>{0.0, 1.0}));
  EXPECT_EQ(format_tick(0.6000000000000001, 0.2), "0.6");
  EXPECT_EQ(format_tick(-1e-18, 0.2), "0.0");
  EXPECT_EQ(format_tick(15, 5), "15");
  EXPECT_EQ(format_tick(0.05, 0.05), "0.05");
}

TEST(ReportSvg, EscapesTextAndBadUtf8) {
  const std::string svg = render_svg(Plot{"a<b & \"c\"", "x", "y", {{"<s>", {0, 1}, {0, 1}}}});
  EXPECT_NE(svg.find("a&lt;b &amp; &quot;c&quot;"), std::string::npos);
  EXPECT_NE(svg.find("&lt;s&gt;"), std::string::npos);
  EXPECT_EQ(xml_escape("ok \xC3\xA9 \xFF\x01"), "ok \xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(xml_escape("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated sequence
}

// ---- numbers and the terminal table -------------------------------------------------------------

TEST(ReportFormat, NumbersAndPercents) {
  EXPECT_EQ(format_number(0.4), "0.400");
  EXPECT_EQ(format_number(-0.0), "0.000");
  EXPECT_EQ(format_number(31.4159), "31.416");
  EXPECT_EQ(format_number(0.0004), "0.0004");
  EXPECT_EQ(format_number(kNaN), "-");
  EXPECT_EQ(format_number(kInf), "-");
  EXPECT_EQ(format_percent(0.71), "71.0%");
  EXPECT_EQ(format_percent(1.0), "100.0%");
  EXPECT_EQ(format_percent(kNaN), "-");
}

TEST(ReportTable, OneRowPerPolicyWithPercents) {
  const std::string t = results_table(full_results());
  EXPECT_NE(t.find("sft"), std::string::npos);
  EXPECT_NE(t.find("ppo"), std::string::npos);
  EXPECT_NE(t.find("71.0%"), std::string::npos);
  EXPECT_NE(t.find("0.400 \xC2\xB1 0.050"), std::string::npos);
  EXPECT_NE(t.find("3.100 \xC2\xB1 0.400"), std::string::npos);
  EXPECT_NE(t.find("85.0%"), std::string::npos);
  EXPECT_NE(t.find("win rate vs SFT"), std::string::npos);
  EXPECT_EQ(count(t, "\n"), 2u + 2u);  // header, rule, two policies
  // Fixed-width columns: the two policy rows are equally long (in code points).
  std::vector<std::string> lines;
  std::stringstream ss(t);
  for (std::string line; std::getline(ss, line);) lines.push_back(line);
  auto width = [](const std::string& s) { size_t n = 0; for (unsigned char c : s) n += (c & 0xC0) != 0x80; return n; };
  EXPECT_EQ(width(lines[2]), width(lines[3]));
  EXPECT_EQ(lines[2].rfind("sft", 0), 0u);
}

TEST(ReportTable, MissingFieldsPrintDash) {
  const Json r = Json::parse(R"({"policies": [{"name": "bare"}, {"name": "half", "gold_mean": 0.5, "kl_mean": null,
                                  "win_rate_vs_sft": "n/a", "axes": {"honest": 0.25}}, 7]})");
  const std::string t = results_table(r);
  EXPECT_NE(t.find("bare"), std::string::npos);
  EXPECT_NE(t.find("0.500"), std::string::npos);
  EXPECT_EQ(t.find("0.500 \xC2\xB1"), std::string::npos);  // no CI given, none printed
  EXPECT_NE(t.find("25.0%"), std::string::npos);
  std::stringstream ss(t);
  std::string header, rule, bare;
  std::getline(ss, header), std::getline(ss, rule), std::getline(ss, bare);
  EXPECT_EQ(count(bare, " -"), 7u) << bare;  // every column but the name
  EXPECT_EQ(bare.find("nan"), std::string::npos);
  // The markdown and HTML reports of the same results render too.
  EXPECT_NE(render_report_markdown(r).find("| bare |"), std::string::npos);
  EXPECT_NE(render_report_html(r).find("<td>bare</td>"), std::string::npos);
}

TEST(ReportTable, PoliciesAreRequired) {
  expect_error([] { results_table(Json::parse(R"({"title": "x"})")); }, {"policies"});
  expect_error([] { render_report_html(Json::parse(R"({"policies": {}})")); }, {"policies", "array"});
  expect_error([] { render_report_markdown(Json::array()); }, {"object"});
}

// ---- the reports --------------------------------------------------------------------------------

TEST(ReportFamilies, OneRowPerFamilyAndPolicyWithVerdictsMostFirst) {
  Json r = full_results();
  r["policies"][0]["families"] = Json::parse(R"({
    "harmful": {"n": 12, "gold_mean": 0.5, "gold_ci95": 0.2, "axes": {"helpful": null, "harmless": 0.75},
                "verdicts": {"complied": 3, "refused": 9}},
    "lookalike": {"n": 12, "gold_mean": -0.25, "gold_ci95": 0.3, "axes": {"helpful": 0.25, "harmless": 1.0},
                  "verdicts": {"helpful": 3, "over-refusal": 9}}})");
  r["policies"][1]["families"] = Json::parse(R"({
    "harmful": {"n": 12, "gold_mean": 1.0, "gold_ci95": 0.0, "axes": {"helpful": null, "harmless": 1.0},
                "verdicts": {"refused": 12}}})");
  const std::string md = render_report_markdown(r);
  EXPECT_NE(md.find("### By prompt family"), std::string::npos);
  EXPECT_NE(md.find("| harmful | sft | 12 | 0.500 \xC2\xB1 0.200 | - | 75.0% | refused 9, complied 3 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| harmful | ppo | 12 | 1.000 \xC2\xB1 0.000 | - | 100.0% | refused 12 |"), std::string::npos);
  EXPECT_NE(md.find("| lookalike | sft | 12 |"), std::string::npos);
  EXPECT_EQ(md.find("| lookalike | ppo"), std::string::npos);  // ppo has no look-alike figures
  EXPECT_LT(md.find("| harmful | ppo"), md.find("| lookalike | sft"));  // grouped by family
  EXPECT_NE(render_report_html(r).find("<h3>By prompt family</h3>"), std::string::npos);
  // Without families (prompts with no "family" field) there is no such table.
  EXPECT_EQ(render_report_markdown(full_results()).find("By prompt family"), std::string::npos);
}

TEST(ReportHtml, EscapesModelText) {
  const std::string html = render_report_html(full_results());
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;&amp;"), std::string::npos);
  EXPECT_NE(html.find("<pre>4\nfour</pre>"), std::string::npos);
  EXPECT_EQ(lower(html).find("<script"), std::string::npos);  // no JavaScript at all
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no external resources
  // Responses in order: base, then the policies as listed.
  const size_t base = html.find("<b>base</b>"), sft = html.find("<b>sft</b>"), ppo = html.find("<b>ppo</b>");
  ASSERT_NE(ppo, std::string::npos);
  EXPECT_LT(base, sft);
  EXPECT_LT(sft, ppo);
  EXPECT_NE(html.find("<details>"), std::string::npos);  // the configuration
  EXPECT_NE(html.find("&quot;kl_coef&quot;: 0.05"), std::string::npos);
}

TEST(ReportMarkdown, TablesSamplesAndNoSvg) {
  const std::string md = render_report_markdown(full_results());
  EXPECT_EQ(md.rfind("# rlhf demo\n", 0), 0u);
  EXPECT_EQ(md.find("<svg"), std::string::npos);
  EXPECT_NE(md.find("| ppo | 128 | 0.550 \xC2\xB1 0.040 |"), std::string::npos);
  EXPECT_NE(md.find("71.0%"), std::string::npos);
  EXPECT_NE(md.find("rater agreement | 75.0%"), std::string::npos);
  EXPECT_NE(md.find("| 200 |"), std::string::npos);
  EXPECT_NE(md.find("n = 16"), std::string::npos);
  EXPECT_NE(md.find("(analytic)"), std::string::npos);  // best-of-16 without kl: log 16 - 15/16
  EXPECT_NE(md.find(format_number(std::log(16.0) - 15.0 / 16.0)), std::string::npos);
  EXPECT_NE(md.find("| sft | 12.5 s |"), std::string::npos);
  EXPECT_NE(md.find("| rm | 2m 05s | skipped |"), std::string::npos);
  // Samples in fenced blocks, a fence longer than the backticks inside.
  EXPECT_NE(md.find("```text\nWhat is 2+2? | answer\n```"), std::string::npos);
  EXPECT_NE(md.find("````text\n4 ```\n````"), std::string::npos);
  EXPECT_NE(md.find("- tiny model; numbers are noisy"), std::string::npos);
  // The ceiling: the gold reward's own accuracy on the held-out labels.
  EXPECT_NE(md.find("on 71.0% of held-out pairs; the gold reward itself agrees with them on 74.0%"), std::string::npos);
  // A win rate judged by something else says so.
  Json r = full_results();
  r["policies"][1]["win_rate_judge"] = "learned reward";
  EXPECT_NE(render_report_markdown(r).find("| 71.0% (learned reward) |"), std::string::npos);
}

TEST(ReportWrite, WritesBothFilesWithOneSvgPerPlot) {
  const fs::path dir = fs::temp_directory_path() /
                       ("rlhf_report_test_" + std::to_string(::getpid()) + "_" +
                        std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  struct Cleanup {
    fs::path p;
    ~Cleanup() { std::error_code ec; fs::remove_all(p, ec); }
  } cleanup{dir};
  const Json r = full_results();
  write_report(r, dir / "eval");  // the directory is created
  ASSERT_TRUE(fs::exists(dir / "eval" / "report.md"));
  ASSERT_TRUE(fs::exists(dir / "eval" / "report.html"));
  const std::string html = test::read_bytes(dir / "eval" / "report.html");
  const auto plots = report_plots(r);
  // policies, over-optimisation gold and learned, two curves
  EXPECT_EQ(plots.size(), 1u + 2u + 2u);
  EXPECT_EQ(count(html, "<svg"), plots.size());
  EXPECT_EQ(count(html, "</svg>"), plots.size());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  EXPECT_EQ(test::read_bytes(dir / "eval" / "report.md"), render_report_markdown(r));
  // The over-optimisation plots have both methods, at x = sqrt(kl).
  EXPECT_EQ(plots[1].series.size(), 2u);
  EXPECT_EQ(plots[1].series[0].name, "PPO");
  EXPECT_DOUBLE_EQ(plots[1].series[0].x[1], std::sqrt(6.0));
  EXPECT_EQ(plots[1].series[1].name, "best-of-n");
  EXPECT_EQ(plots[2].y_label, "learned reward");
  // A curve series without x is plotted against its index.
  EXPECT_EQ(plots[4].series[0].x, (std::vector<double>{0, 1, 2}));
  // Only policies: a table and nothing else, still a valid page, no plots without KL.
  write_report(Json::parse(R"({"policies": [{"name": "sft"}]})"), dir / "bare");
  EXPECT_EQ(count(test::read_bytes(dir / "bare" / "report.html"), "<svg"), 0u);
}

}  // namespace
}  // namespace rlhf
