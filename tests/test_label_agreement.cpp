// Inter-rater agreement for the labelling app (issue 17, src/label/agreement.h): hand-computed values of
// tau-b, Kendall's W, Krippendorff's alpha, pairwise and per-rater agreement and the consensus rankings,
// edge cases, and (MatchesPythonReference) random tasks against tests/ref/agreement_fixtures.py, whose
// values come from scipy and the krippendorff package. No libtorch.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "label/agreement.h"

namespace rlhf::label {
namespace {

constexpr double kNaN = NAN;

// ---- rank vectors ------------------------------------------------------------------------------------

TEST(LabelAgreement, MidRanksAverageTiesAndSkipMissing) {
  // [0, 1, 1, 2]: positions 1, {2, 3}, 4 -> 1, 2.5, 2.5, 4.
  std::vector<double> m = mid_ranks({0, 1, 1, 2});
  ASSERT_EQ(m.size(), 4u);
  EXPECT_DOUBLE_EQ(m[0], 1.0);
  EXPECT_DOUBLE_EQ(m[1], 2.5);
  EXPECT_DOUBLE_EQ(m[2], 2.5);
  EXPECT_DOUBLE_EQ(m[3], 4.0);
  // [3, -1, 0, 3]: ranked {0: 3, 2: 0, 3: 3} -> response 2 first (1), 0 and 3 share 2 and 3 (2.5).
  m = mid_ranks({3, -1, 0, 3});
  EXPECT_DOUBLE_EQ(m[0], 2.5);
  EXPECT_TRUE(std::isnan(m[1]));
  EXPECT_DOUBLE_EQ(m[2], 1.0);
  EXPECT_DOUBLE_EQ(m[3], 2.5);
  EXPECT_TRUE(mid_ranks({}).empty());
  EXPECT_EQ(dense_ranks({5, -1, 5, 0, 9}), (std::vector<int>{1, -1, 1, 0, 2}));
}

TEST(LabelAgreement, GroupsAndRankVectorsConvert) {
  // The app's ranking [2, [0, 3], 1]: response 2 best, 0 and 3 tied second, 1 last.
  std::vector<std::vector<int>> groups{{2}, {0, 3}, {1}};
  std::vector<int> rank = ranks_from_groups(groups, 4);
  EXPECT_EQ(rank, (std::vector<int>{1, 2, 0, 1}));
  EXPECT_EQ(groups_from_ranks(rank), groups);
  // Non-dense groups and a missing response: [5, -1, 5, 0] -> {3} then {0, 2}; 1 is left out.
  EXPECT_EQ(groups_from_ranks({5, -1, 5, 0}), (std::vector<std::vector<int>>{{3}, {0, 2}}));
  EXPECT_EQ(ranks_from_groups({{1}}, 3), (std::vector<int>{-1, 0, -1}));
  EXPECT_TRUE(groups_from_ranks({}).empty());
  EXPECT_THROW(ranks_from_groups({{0}, {0}}, 2), std::runtime_error);  // rlhf::Error   // listed twice
  EXPECT_THROW(ranks_from_groups({{0, 2}}, 2), std::runtime_error);  // rlhf::Error     // out of range
  EXPECT_THROW(ranks_from_groups({{0}, {}}, 2), std::runtime_error);  // rlhf::Error    // empty group
  EXPECT_THROW(ranks_from_groups({{-1}}, 2), std::runtime_error);  // rlhf::Error
  EXPECT_THROW(groups_from_ranks({0, -2}), std::runtime_error);  // rlhf::Error
}

// ---- Kendall's tau-b -------------------------------------------------------------------------------------

TEST(LabelAgreement, KendallTauBHandComputed) {
  // No ties: a = [0,1,2,3], b = [0,2,1,3]; of the 6 pairs only (1,2) is discordant: (5 - 1) / 6 = 2/3.
  EXPECT_NEAR(kendall_tau_b({0, 1, 2, 3}, {0, 2, 1, 3}), 2.0 / 3.0, 1e-12);
  // Ties: a = [0,0,1,2], b = [0,1,1,2]. Pairs: (0,1) tied in a; (1,2) tied in b; (0,2) (0,3) (1,3) (2,3)
  // concordant. n0 = 6, n1 = n2 = 1: 4 / sqrt(5 * 5) = 0.8.
  EXPECT_NEAR(kendall_tau_b({0, 0, 1, 2}, {0, 1, 1, 2}), 0.8, 1e-12);
  // Ties and a discordant pair: a = [0,1,1], b = [1,0,2]. (0,1): a -, b + -> D; (0,2): a -, b - -> C;
  // (1,2): tied in a. (1 - 1) / sqrt(2 * 3) = 0; a = [0,1,1], b = [0,1,0]: (0,1) C, (0,2) tied in b,
  // (1,2) tied in a: 1 / sqrt(2 * 2) = 0.5.
  EXPECT_NEAR(kendall_tau_b({0, 1, 1}, {1, 0, 2}), 0.0, 1e-12);
  EXPECT_NEAR(kendall_tau_b({0, 1, 1}, {0, 1, 0}), 0.5, 1e-12);
  // Missing entries are left out: common indices {0, 1, 3} give [0,1,2] vs [2,1,0] -> -1.
  EXPECT_NEAR(kendall_tau_b({0, 1, -1, 2}, {2, 1, 0, 0}), -1.0, 1e-12);
  EXPECT_NEAR(kendall_tau_b({3, 1, 2}, {3, 1, 2}), 1.0, 1e-12);
  // Undefined: one ranking all tied, fewer than 2 common indices, empty.
  EXPECT_TRUE(std::isnan(kendall_tau_b({0, 0, 0}, {0, 1, 2})));
  EXPECT_TRUE(std::isnan(kendall_tau_b({0, -1, 1}, {-1, 0, 1})));
  EXPECT_TRUE(std::isnan(kendall_tau_b({}, {})));
  EXPECT_THROW(kendall_tau_b({0, 1}, {0, 1, 2}), std::runtime_error);  // rlhf::Error
}

// ---- Kendall's W -----------------------------------------------------------------------------------------

TEST(LabelAgreement, KendallWHandComputedWithTies) {
  // 3 raters x 4 objects:
  //   r1 = [0,1,2,3] -> mid-ranks 1, 2, 3, 4      (T = 0)
  //   r2 = [0,1,1,2] -> 1, 2.5, 2.5, 4            (one pair tied: T = 2^3 - 2 = 6)
  //   r3 = [1,0,2,2] -> 2, 1, 3.5, 3.5            (T = 6)
  // R = [4, 5.5, 9, 11.5], mean m (n + 1) / 2 = 7.5, S = 3.5^2 + 2^2 + 1.5^2 + 4^2 = 34.5.
  // W = 12 * 34.5 / (3^2 (4^3 - 4) - 3 * 12) = 414 / 504 = 23 / 28.
  EXPECT_NEAR(kendall_w({{0, 1, 2, 3}, {0, 1, 1, 2}, {1, 0, 2, 2}}), 23.0 / 28.0, 1e-12);
  // Perfect agreement: R = [3, 6, 9, 12], S = 45, W = 12 * 45 / 540 = 1.
  EXPECT_NEAR(kendall_w({{0, 1, 2, 3}, {0, 1, 2, 3}, {0, 1, 2, 3}}), 1.0, 1e-12);
  // Two raters in exactly opposite orders: R = [4, 4], S = 0, W = 0.
  EXPECT_NEAR(kendall_w({{0, 1}, {1, 0}}), 0.0, 1e-12);
  // A rater with a missing entry is left out: the same as the two complete raters.
  EXPECT_NEAR(kendall_w({{0, 1, 2}, {0, -1, 1}, {0, 2, 1}}), kendall_w({{0, 1, 2}, {0, 2, 1}}), 1e-15);
  // Undefined: one rater, one object, every rater ties everything (denominator 0), nothing.
  EXPECT_TRUE(std::isnan(kendall_w({{0, 1, 2}})));
  EXPECT_TRUE(std::isnan(kendall_w({{0}, {0}})));
  EXPECT_TRUE(std::isnan(kendall_w({{0, 0, 0}, {1, 1, 1}})));
  EXPECT_TRUE(std::isnan(kendall_w({{0, 1}, {-1, 0}})));
  EXPECT_TRUE(std::isnan(kendall_w({})));
  EXPECT_THROW(kendall_w({{0, 1}, {0, 1, 2}}), std::runtime_error);  // rlhf::Error
}

// ---- Krippendorff's alpha --------------------------------------------------------------------------------

TEST(LabelAgreement, KrippendorffAlphaHandComputed) {
  // 2 raters x 4 units; unit 3 has one value only (dropped: its category 3 gets n_3 = 0).
  //   u0 = (1, 1): o_11 += 2 * 1 / 1;  u1 = (2, 2): o_22 += 2;  u2 = (1, 2): o_12 = o_21 = 1.
  //   n_1 = n_2 = 3, n = 6. Ordinal d_12 = (n_1 + n_2 - (n_1 + n_2) / 2)^2 = 9.
  //   D_o = 2 * 1 * 9 = 18; e_12 = 3 * 3 / 5 -> D_e = 2 * 9/5 * 9 = 32.4; alpha = 1 - 18 / 32.4 = 4/9.
  // With two categories every metric gives the same alpha.
  std::vector<std::vector<double>> data{{1, 2, 1, 3}, {1, 2, 2, kNaN}};
  EXPECT_NEAR(krippendorff_alpha_ordinal(data), 4.0 / 9.0, 1e-12);
  EXPECT_NEAR(krippendorff_alpha_nominal(data), 4.0 / 9.0, 1e-12);
  // Interval: d_12 = 1, d_13 = 4, d_23 = 1 but n_3 = 0 -> 1 - 2 / (2 * 9/5) = 4/9 as well.
  EXPECT_NEAR(krippendorff_alpha_interval(data), 4.0 / 9.0, 1e-12);

  // Five categories -2..2, each present once among the pairable values (n_c = 1, n = 5), so the ordinal
  // distance is (index difference)^2. Units (-2, -1, 1) (m = 3: o += 1/2 per ordered pair) and (0, 2).
  //   D_o = 2 * (1/2 * 1 + 1/2 * 9 + 1/2 * 4) + 2 * 1 * 4 = 22.
  //   D_e = sum_{c != k} (1 * 1 / 4) (c - k)^2 = (2 / 4) (4*1 + 3*4 + 2*9 + 1*16) = 25. alpha = 1 - 22/25.
  EXPECT_NEAR(krippendorff_alpha_ordinal({{-2, 0}, {-1, 2}, {1, kNaN}}), 0.12, 1e-12);
}

TEST(LabelAgreement, KrippendorffAlphaClassicExample) {
  // Krippendorff (2011), "Computing Krippendorff's alpha-reliability", p. 8: 4 coders x 12 units with
  // missing values. The krippendorff package documents ordinal 0.815 and nominal 0.743; interval is
  // 0.849 (package: 0.8153875037548814, 0.743421052631579, 0.8491071428571428).
  const double n = kNaN;
  std::vector<std::vector<double>> data{{1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n},
                                        {1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3},
                                        {n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n},
                                        {1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n}};
  EXPECT_NEAR(krippendorff_alpha_ordinal(data), 0.8153875037548814, 1e-12);
  EXPECT_NEAR(krippendorff_alpha_nominal(data), 0.743421052631579, 1e-12);
  EXPECT_NEAR(krippendorff_alpha_interval(data), 0.8491071428571428, 1e-12);
}

TEST(LabelAgreement, KrippendorffAlphaPerfectAndUndefined) {
  EXPECT_NEAR(krippendorff_alpha_ordinal({{1, 2, 3, 0.5}, {1, 2, 3, 0.5}, {1, kNaN, 3, 0.5}}), 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(krippendorff_alpha_ordinal({{1, 1, 1}, {1, 1, 1}})));       // one category
  EXPECT_TRUE(std::isnan(krippendorff_alpha_ordinal({{1, kNaN}, {kNaN, 2}})));       // no pairable unit
  EXPECT_TRUE(std::isnan(krippendorff_alpha_ordinal({{1, 1, 2}, {1, 1, kNaN}})));    // one pairable value
  EXPECT_TRUE(std::isnan(krippendorff_alpha_ordinal({})));
  EXPECT_TRUE(std::isnan(krippendorff_alpha_ordinal({{}, {}})));
  EXPECT_TRUE(std::isnan(krippendorff_alpha_ordinal({{1, 2, 3}})));  // one rater
  EXPECT_THROW(krippendorff_alpha_ordinal({{1, 2}, {1}}), std::runtime_error);  // rlhf::Error
  EXPECT_THROW(krippendorff_alpha_ordinal({{1, INFINITY}, {1, 2}}), std::runtime_error);  // rlhf::Error
}

// ---- a whole task ----------------------------------------------------------------------------------------

TEST(LabelAgreement, PairwiseAgreementOnSmallTask) {
  // Item 0, K = 3: r1 = [0,1,2], r2 = [0,2,1], r3 = [1,1,0]. Directions on (0,1), (0,2), (1,2):
  //   r1: - - -    r2: - - +    r3: tie + +
  //   (r1, r2): 3 strict pairs, agree on 2.   (r1, r3): 2 pairs, agree 0.   (r2, r3): 2 pairs, agree 1.
  // Item 1, K = 2: r1 = r2 = [1, 0]: 1 pair, agrees. Item 2: r3 alone (no overlap).
  // pairwise = (2 + 0 + 1 + 1) / (3 + 2 + 2 + 1) = 4 / 8.
  // Per rater: r1 (2 + 0 + 1) / (3 + 2 + 1) = 1/2; r2 (2 + 1 + 1) / (3 + 2 + 1) = 2/3; r3 (0 + 1) / 4.
  // tau-b: item 0 (r1, r2) = (2 - 1) / 3; (r1, r3) = -2 / sqrt(3 * 2); (r2, r3) = 0 / sqrt(6); item 1: 1.
  // W: item 0 mid-ranks [1,2,3], [1,3,2], [2.5,2.5,1] -> R = [4.5, 7.5, 6], S = 4.5, T = 6,
  //    W = 12 * 4.5 / (9 * 24 - 3 * 6) = 54 / 198 = 3/11; item 1: W = 1; mean 7/11.
  std::vector<std::vector<RaterRanking>> items{
      {{1, {0, 1, 2}}, {2, {0, 2, 1}}, {3, {1, 1, 0}}},
      {{2, {1, 0}}, {1, {1, 0}}},
      {{3, {0, 1}}},
  };
  Agreement a = rank_agreement(items);
  EXPECT_EQ(a.pairs, 8);
  EXPECT_NEAR(a.pairwise, 0.5, 1e-12);
  EXPECT_EQ(a.tau_pairs, 4);
  EXPECT_NEAR(a.kendall_tau, (1.0 / 3.0 - 2.0 / std::sqrt(6.0) + 0.0 + 1.0) / 4.0, 1e-12);
  EXPECT_EQ(a.w_items, 2);
  EXPECT_NEAR(a.kendall_w, 7.0 / 11.0, 1e-12);
  EXPECT_EQ(a.items_with_overlap, 2);
  EXPECT_FALSE(std::isnan(a.krippendorff_alpha));
  ASSERT_EQ(a.per_rater.size(), 3u);
  EXPECT_EQ(a.per_rater[0].rater, 1);
  EXPECT_NEAR(a.per_rater[0].agreement, 0.5, 1e-12);
  EXPECT_EQ(a.per_rater[0].pairs, 6);
  EXPECT_EQ(a.per_rater[0].overlapping_items, 2);
  EXPECT_EQ(a.per_rater[1].rater, 2);
  EXPECT_NEAR(a.per_rater[1].agreement, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(a.per_rater[1].pairs, 6);
  EXPECT_EQ(a.per_rater[1].overlapping_items, 2);
  EXPECT_EQ(a.per_rater[2].rater, 3);
  EXPECT_NEAR(a.per_rater[2].agreement, 0.25, 1e-12);
  EXPECT_EQ(a.per_rater[2].pairs, 4);
  EXPECT_EQ(a.per_rater[2].overlapping_items, 1);
}

TEST(LabelAgreement, PerfectAgreementGivesOne) {
  std::vector<std::vector<RaterRanking>> items{
      {{7, {0, 1, 2}}, {9, {0, 1, 2}}},
      {{7, {2, 0, 1, 1}}, {9, {2, 0, 1, 1}}, {4, {2, 0, 1, 1}}},
  };
  Agreement a = rank_agreement(items);
  EXPECT_DOUBLE_EQ(a.pairwise, 1.0);
  EXPECT_NEAR(a.kendall_tau, 1.0, 1e-12);
  EXPECT_NEAR(a.krippendorff_alpha, 1.0, 1e-12);
  EXPECT_NEAR(a.kendall_w, 1.0, 1e-12);
  for (const auto& p : a.per_rater) EXPECT_DOUBLE_EQ(p.agreement, 1.0);
  EXPECT_EQ(a.per_rater.front().rater, 4);  // sorted by id
  EXPECT_EQ(a.per_rater.back().rater, 9);

  Agreement c = choice_agreement({{{1, -2}, {2, -2}}, {{1, 1}, {2, 1}, {3, 1}}, {{2, 0}, {3, 0}}});
  EXPECT_DOUBLE_EQ(c.pairwise, 1.0);
  EXPECT_EQ(c.pairs, 4);  // 1 + 3; the item of zeros counts no pair
  EXPECT_NEAR(c.krippendorff_alpha, 1.0, 1e-12);
}

TEST(LabelAgreement, ChoiceAgreementHandComputed) {
  // Item 0: r1 -2, r2 -1, r3 1 -> (r1, r2) agree, (r1, r3) and (r2, r3) disagree. Item 1: r1 0, r2 2 ->
  // no pair (a zero). Item 2: r3 alone. pairwise = 1/3; per rater r1 1/2, r2 1/2, r3 0/2.
  // Alpha over items with values (-2, -1, 1), (0, 2), (2): 0.12 (see KrippendorffAlphaHandComputed; the
  // lone value 2 of item 2 is not pairable, so it changes nothing).
  Agreement a = choice_agreement({{{1, -2}, {2, -1}, {3, 1}}, {{1, 0}, {2, 2}}, {{3, 2}}});
  EXPECT_EQ(a.pairs, 3);
  EXPECT_NEAR(a.pairwise, 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(a.krippendorff_alpha, 0.12, 1e-12);
  EXPECT_TRUE(std::isnan(a.kendall_tau));
  EXPECT_TRUE(std::isnan(a.kendall_w));
  EXPECT_EQ(a.tau_pairs, 0);
  EXPECT_EQ(a.w_items, 0);
  EXPECT_EQ(a.items_with_overlap, 2);
  ASSERT_EQ(a.per_rater.size(), 3u);
  EXPECT_NEAR(a.per_rater[0].agreement, 0.5, 1e-12);
  EXPECT_EQ(a.per_rater[0].overlapping_items, 2);
  EXPECT_NEAR(a.per_rater[1].agreement, 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(a.per_rater[2].agreement, 0.0);
  EXPECT_EQ(a.per_rater[2].pairs, 2);
  EXPECT_EQ(a.per_rater[2].overlapping_items, 1);
  EXPECT_THROW(choice_agreement({{{1, 3}}}), std::runtime_error);  // rlhf::Error
  EXPECT_THROW(choice_agreement({{{1, 1}, {1, 2}}}), std::runtime_error);  // rlhf::Error
}

TEST(LabelAgreement, PerRaterAgreementFindsAdversarialRater) {
  // 40 items of K = 4 responses, raters 11, 12, 13 follow the item's true order (one adjacent swap now and
  // then), rater 99 reverses it. Each honest rater agrees with the other two on (almost) every pair and
  // with 99 on (almost) none: about 2/3; rater 99 about 0.
  std::mt19937 rng(17);
  std::vector<std::vector<RaterRanking>> items;
  for (int it = 0; it < 40; ++it) {
    std::vector<int> truth{0, 1, 2, 3};
    std::shuffle(truth.begin(), truth.end(), rng);
    std::vector<RaterRanking> item;
    for (int64_t r : {11, 12, 13}) {
      std::vector<int> rank = truth;
      if (rng() % 5 == 0) {  // swap the responses at positions p and p + 1
        int p = static_cast<int>(rng() % 3);
        for (int& v : rank) v = v == p ? p + 1 : v == p + 1 ? p : v;
      }
      item.push_back({r, rank});
    }
    std::vector<int> reversed = truth;
    for (int& v : reversed) v = 3 - v;
    item.push_back({99, reversed});
    items.push_back(item);
  }
  Agreement a = rank_agreement(items);
  ASSERT_EQ(a.per_rater.size(), 4u);
  const PerRaterAgreement& adversary = a.per_rater.back();
  EXPECT_EQ(adversary.rater, 99);
  EXPECT_EQ(adversary.overlapping_items, 40);
  EXPECT_EQ(adversary.pairs, 40 * 3 * 6);
  EXPECT_LT(adversary.agreement, 0.1);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_GT(a.per_rater[i].agreement, 0.55) << a.per_rater[i].rater;
    EXPECT_GT(a.per_rater[i].agreement, adversary.agreement + 0.4);
  }
  auto worst = std::min_element(a.per_rater.begin(), a.per_rater.end(),
                                [](const auto& x, const auto& y) { return x.agreement < y.agreement; });
  EXPECT_EQ(worst->rater, 99);
}

TEST(LabelAgreement, EdgeCasesGiveNaN) {
  Agreement none = rank_agreement({});
  EXPECT_TRUE(std::isnan(none.pairwise));
  EXPECT_TRUE(std::isnan(none.kendall_tau));
  EXPECT_TRUE(std::isnan(none.krippendorff_alpha));
  EXPECT_TRUE(std::isnan(none.kendall_w));
  EXPECT_EQ(none.pairs, 0);
  EXPECT_EQ(none.items_with_overlap, 0);
  EXPECT_TRUE(none.per_rater.empty());
  EXPECT_TRUE(std::isnan(rank_agreement({{}, {}}).pairwise));  // items nobody labelled

  // One rater: nothing to compare.
  Agreement one = rank_agreement({{{5, {0, 1, 2}}}, {{5, {1, 0}}}});
  EXPECT_TRUE(std::isnan(one.pairwise));
  EXPECT_TRUE(std::isnan(one.kendall_tau));
  EXPECT_TRUE(std::isnan(one.krippendorff_alpha));
  EXPECT_TRUE(std::isnan(one.kendall_w));
  ASSERT_EQ(one.per_rater.size(), 1u);
  EXPECT_EQ(one.per_rater[0].rater, 5);
  EXPECT_TRUE(std::isnan(one.per_rater[0].agreement));
  EXPECT_EQ(one.per_rater[0].overlapping_items, 0);

  // Everyone ties everything: no strict pair, tau and W undefined, alpha undefined (one category).
  Agreement tied = rank_agreement({{{1, {0, 0, 0}}, {2, {0, 0, 0}}}});
  EXPECT_EQ(tied.items_with_overlap, 1);
  EXPECT_EQ(tied.pairs, 0);
  EXPECT_TRUE(std::isnan(tied.pairwise));
  EXPECT_TRUE(std::isnan(tied.kendall_tau));
  EXPECT_EQ(tied.tau_pairs, 0);
  EXPECT_TRUE(std::isnan(tied.krippendorff_alpha));
  EXPECT_TRUE(std::isnan(tied.kendall_w));
  EXPECT_EQ(tied.w_items, 0);

  // Missing everywhere: W needs complete rankings, pairs need both ranked.
  Agreement missing = rank_agreement({{{1, {0, -1, 1}}, {2, {-1, 0, 1}}}});
  EXPECT_EQ(missing.pairs, 0);
  EXPECT_EQ(missing.w_items, 0);
  EXPECT_EQ(missing.tau_pairs, 0);

  Agreement no_choice = choice_agreement({});
  EXPECT_TRUE(std::isnan(no_choice.pairwise));
  EXPECT_TRUE(std::isnan(no_choice.krippendorff_alpha));

  // Malformed input throws.
  EXPECT_THROW(rank_agreement({{{1, {0, 1}}, {2, {0, 1, 2}}}}), std::runtime_error);  // rlhf::Error  // lengths differ
  EXPECT_THROW(rank_agreement({{{1, {0, 1}}, {1, {1, 0}}}}), std::runtime_error);  // rlhf::Error     // rater twice
  EXPECT_THROW(rank_agreement({{{1, {0, -2}}}}), std::runtime_error);  // rlhf::Error
}

// ---- consensus -------------------------------------------------------------------------------------------

TEST(LabelAgreement, RankedPairsCondorcetCycle) {
  // A = 0, B = 1, C = 2. 4 raters A>B>C, 3 raters B>C>A, 2 raters C>A>B.
  // s(A,B) = 4 + 2 = 6 vs 3: margin 3;  s(B,C) = 4 + 3 = 7 vs 2: margin 5;  s(C,A) = 3 + 2 = 5 vs 4: margin 1.
  // A cycle A > B > C > A. Lock B > C (5), then A > B (3); C > A (1) would close the cycle: skipped.
  // Result A > B > C.
  std::vector<std::vector<int>> ranks;
  for (int i = 0; i < 4; ++i) ranks.push_back({0, 1, 2});
  for (int i = 0; i < 3; ++i) ranks.push_back({2, 0, 1});
  for (int i = 0; i < 2; ++i) ranks.push_back({1, 2, 0});
  EXPECT_EQ(consensus_ranked_pairs(ranks), (std::vector<int>{0, 1, 2}));
  // Mean rank: A (4*1 + 3*3 + 2*2) / 9 = 17/9, B (4*2 + 3*1 + 2*3) / 9 = 17/9, C 20/9: A and B tie.
  EXPECT_EQ(consensus_mean_rank(ranks), (std::vector<int>{0, 0, 1}));

  // The symmetric cycle A>B>C, B>C>A, C>A>B: every majority has margin 1 and support 2, one tier; all
  // three lock together into a cycle, so the three tie (no preference by index).
  EXPECT_EQ(consensus_ranked_pairs({{0, 1, 2}, {2, 0, 1}, {1, 2, 0}}), (std::vector<int>{0, 0, 0}));
  // The same cycle under D, which loses to everyone: the cycle ties first, D last.
  EXPECT_EQ(consensus_ranked_pairs({{0, 1, 2, 3}, {2, 0, 1, 3}, {1, 2, 0, 3}}), (std::vector<int>{0, 0, 0, 1}));
}

TEST(LabelAgreement, RankedPairsClearMajorityTiesAndMissing) {
  // 3 raters [0,1,2,3] and 2 raters the reverse: every pair is 3 to 2 the first way.
  std::vector<std::vector<int>> ranks{{0, 1, 2, 3}, {0, 1, 2, 3}, {0, 1, 2, 3}, {3, 2, 1, 0}, {3, 2, 1, 0}};
  EXPECT_EQ(consensus_ranked_pairs(ranks), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(consensus_mean_rank(ranks), (std::vector<int>{0, 1, 2, 3}));  // 1.8, 2.4, 2.6, 3.2
  // Equal support both ways is a tie.
  EXPECT_EQ(consensus_ranked_pairs({{0, 1}, {1, 0}}), (std::vector<int>{0, 0}));
  // A ranked tie group stays a tie; a response nobody ranked is -1.
  EXPECT_EQ(consensus_ranked_pairs({{0, 0, 1, -1}, {0, 0, 1, -1}}), (std::vector<int>{0, 0, 1, -1}));
  // Layers: A > B by 2 to 0, C is ranked only by a third rater, against nothing: C ties with A in the
  // first layer.
  EXPECT_EQ(consensus_ranked_pairs({{0, 1, -1}, {0, 1, -1}, {-1, -1, 0}}), (std::vector<int>{0, 1, 0}));
  EXPECT_TRUE(consensus_ranked_pairs({}).empty());
  EXPECT_EQ(consensus_ranked_pairs({{0, 1, 2}}), (std::vector<int>{0, 1, 2}));
  EXPECT_THROW(consensus_ranked_pairs({{0, 1}, {0}}), std::runtime_error);  // rlhf::Error
}

TEST(LabelAgreement, MeanRankConsensusWithTies) {
  // [0,1,1] -> mid-ranks 1, 2.5, 2.5; [0,0,1] -> 1.5, 1.5, 3. Means 1.25, 2, 2.75.
  EXPECT_EQ(consensus_mean_rank({{0, 1, 1}, {0, 0, 1}}), (std::vector<int>{0, 1, 2}));
  // [0,1,2] and [1,0,2]: means 1.5, 1.5, 3 -> the first two tie exactly.
  EXPECT_EQ(consensus_mean_rank({{0, 1, 2}, {1, 0, 2}}), (std::vector<int>{0, 0, 1}));
  // Opposite orders: everything 2.
  EXPECT_EQ(consensus_mean_rank({{0, 1, 2}, {2, 1, 0}}), (std::vector<int>{0, 0, 0}));
  // Missing: [0,1,-1] -> 1, 2, -; [-1,0,1] -> -, 1, 2. Means 1, 1.5, 2. Response 3 nobody ranked.
  EXPECT_EQ(consensus_mean_rank({{0, 1, -1, -1}, {-1, 0, 1, -1}}), (std::vector<int>{0, 1, 2, -1}));
  // Equal means over different counts: [0,1,2] -> 1,2,3; [1,0,2] -> 2,1,3; [0,-1,0] -> 1.5,-,1.5.
  // Response 0: (1 + 2 + 1.5) / 3 = 1.5, response 1: (2 + 1) / 2 = 1.5 (a tie), response 2: 7.5 / 3 = 2.5.
  EXPECT_EQ(consensus_mean_rank({{0, 1, 2}, {1, 0, 2}, {0, -1, 0}}), (std::vector<int>{0, 0, 1}));
  EXPECT_TRUE(consensus_mean_rank({}).empty());
  EXPECT_EQ(consensus_mean_rank({{}}), std::vector<int>{});
}

// ---- the Python reference ----------------------------------------------------------------------------------

double value_or_nan(const nlohmann::json& j) { return j.is_null() ? kNaN : j.get<double>(); }

void expect_close(double actual, const nlohmann::json& expected, const std::string& what) {
  if (expected.is_null()) {
    EXPECT_TRUE(std::isnan(actual)) << what << ": expected NaN, got " << actual;
  } else {
    EXPECT_NEAR(actual, expected.get<double>(), 1e-9) << what;
  }
}

void expect_agreement(const Agreement& a, const nlohmann::json& e, const std::string& where) {
  expect_close(a.pairwise, e["pairwise"], where + " pairwise");
  EXPECT_EQ(a.pairs, e["pairs"].get<int64_t>()) << where;
  expect_close(a.kendall_tau, e["kendall_tau"], where + " kendall_tau");
  EXPECT_EQ(a.tau_pairs, e["tau_pairs"].get<int64_t>()) << where;
  expect_close(a.krippendorff_alpha, e["krippendorff_alpha"], where + " krippendorff_alpha");
  expect_close(a.kendall_w, e["kendall_w"], where + " kendall_w");
  EXPECT_EQ(a.w_items, e["w_items"].get<int64_t>()) << where;
  EXPECT_EQ(a.items_with_overlap, e["items_with_overlap"].get<int64_t>()) << where;
  const auto& per = e["per_rater"];
  ASSERT_EQ(a.per_rater.size(), per.size()) << where;
  for (size_t i = 0; i < per.size(); ++i) {
    const std::string w = where + " rater " + std::to_string(per[i]["rater"].get<int64_t>());
    EXPECT_EQ(a.per_rater[i].rater, per[i]["rater"].get<int64_t>()) << w;
    expect_close(a.per_rater[i].agreement, per[i]["agreement"], w + " agreement");
    EXPECT_EQ(a.per_rater[i].pairs, per[i]["pairs"].get<int64_t>()) << w;
    EXPECT_EQ(a.per_rater[i].overlapping_items, per[i]["overlapping_items"].get<int64_t>()) << w;
  }
}

TEST(LabelAgreement, MatchesPythonReference) {
#ifndef RLHF_AGREEMENT_FIXTURE_DIR
  GTEST_SKIP() << "RLHF_AGREEMENT_FIXTURE_DIR not defined (no project venv at configure time)";
#else
  const std::string path = std::string(RLHF_AGREEMENT_FIXTURE_DIR) + "/agreement.json";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing " << path << " (written by tests/ref/agreement_fixtures.py)";
  const nlohmann::json root = nlohmann::json::parse(in);
  const auto& cases = root.at("cases");
  ASSERT_GE(cases.size(), 50u);
  size_t n_rank = 0, n_choice = 0, n_alpha = 0, n_tau = 0, n_w = 0;
  for (size_t c = 0; c < cases.size(); ++c) {
    const auto& cs = cases[c];
    const std::string kind = cs.at("kind").get<std::string>();
    const std::string where = "case " + std::to_string(c) + " (" + kind + ")";
    if (kind == "rank") {
      ++n_rank;
      std::vector<std::vector<RaterRanking>> items;
      for (const auto& item : cs.at("items")) {
        std::vector<RaterRanking> labels;
        for (const auto& l : item) labels.push_back({l.at("rater").get<int64_t>(), l.at("rank").get<std::vector<int>>()});
        items.push_back(labels);
      }
      expect_agreement(rank_agreement(items), cs.at("expected"), where);
      auto rank_of = [&](size_t item, int64_t rater) {
        for (const auto& l : items[item])
          if (l.rater == rater) return l.rank;
        ADD_FAILURE() << where << ": no rater " << rater << " on item " << item;
        return std::vector<int>{};
      };
      for (const auto& t : cs.at("tau")) {
        ++n_tau;
        size_t item = t.at("item").get<size_t>();
        expect_close(kendall_tau_b(rank_of(item, t.at("a").get<int64_t>()), rank_of(item, t.at("b").get<int64_t>())),
                     t.at("value"), where + " tau of item " + std::to_string(item));
      }
      for (const auto& w : cs.at("w")) {
        ++n_w;
        size_t item = w.at("item").get<size_t>();
        std::vector<std::vector<int>> ranks;
        for (const auto& l : items[item]) ranks.push_back(l.rank);
        expect_close(kendall_w(ranks), w.at("value"), where + " W of item " + std::to_string(item));
      }
      for (size_t item = 0; item < items.size(); ++item) {
        std::vector<std::vector<int>> ranks;
        for (const auto& l : items[item]) {
          ranks.push_back(l.rank);
          // Round trip through the app's nested groups keeps the order (as dense groups).
          EXPECT_EQ(ranks_from_groups(groups_from_ranks(l.rank), static_cast<int>(l.rank.size())), dense_ranks(l.rank));
        }
        const std::string w = where + " item " + std::to_string(item);
        EXPECT_EQ(consensus_mean_rank(ranks), cs.at("mean_rank")[item].get<std::vector<int>>()) << w << " mean rank";
        EXPECT_EQ(consensus_ranked_pairs(ranks), cs.at("ranked_pairs")[item].get<std::vector<int>>()) << w << " ranked pairs";
      }
    } else if (kind == "choice") {
      ++n_choice;
      std::vector<std::vector<RaterChoice>> items;
      for (const auto& item : cs.at("items")) {
        std::vector<RaterChoice> labels;
        for (const auto& l : item) labels.push_back({l.at("rater").get<int64_t>(), l.at("choice").get<int>()});
        items.push_back(labels);
      }
      expect_agreement(choice_agreement(items), cs.at("expected"), where);
    } else if (kind == "alpha") {
      ++n_alpha;
      std::vector<std::vector<double>> data;
      for (const auto& row : cs.at("data")) {
        std::vector<double> r;
        for (const auto& v : row) r.push_back(value_or_nan(v));
        data.push_back(r);
      }
      expect_close(krippendorff_alpha_ordinal(data), cs.at("ordinal"), where + " ordinal");
      expect_close(krippendorff_alpha_interval(data), cs.at("interval"), where + " interval");
      expect_close(krippendorff_alpha_nominal(data), cs.at("nominal"), where + " nominal");
    } else {
      ADD_FAILURE() << where << ": unknown kind";
    }
  }
  EXPECT_GE(n_rank, 40u);
  EXPECT_GE(n_choice, 10u);
  EXPECT_GE(n_alpha, 20u);
  EXPECT_GE(n_tau, 100u);
  EXPECT_GE(n_w, 50u);
#endif
}

}  // namespace
}  // namespace rlhf::label
