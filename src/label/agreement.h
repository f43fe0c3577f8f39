// Inter-rater agreement for the human labelling app (issue 17): how far the raters of a labelling task
// agree with each other (pairwise agreement, Kendall's tau-b, Krippendorff's alpha, Kendall's W, each
// rater's agreement with the others), and a consensus ranking of several raters' labels of one item for
// the export's --aggregate. Pure standard C++: no libtorch.
//
// A ranking of K responses is a rank vector: rank[i] = the position group of response i, 0 = best, equal
// values = a tie, -1 = response i not ranked by this rater (missing). Group values need only be ordered,
// not dense ([0, 2, 2] is fine). Undefined statistics are NaN, never an exception; malformed input
// (rows of different lengths, values below -1, a rater twice on one item) throws rlhf::Error.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

namespace rlhf::label {

// ---- rank vectors ------------------------------------------------------------------------------------

// 1-based mid-ranks: r_i = 1 + #{j : rank[j] < rank[i]} + (#{j != i : rank[j] == rank[i]}) / 2 over the
// ranked entries (scipy.stats.rankdata "average"); NaN where rank[i] == -1.
std::vector<double> mid_ranks(const std::vector<int>& rank);

// Dense rank groups: the g-th smallest distinct value becomes g (0-based); -1 stays -1.
std::vector<int> dense_ranks(const std::vector<int>& rank);

// Rank vector of K = k responses from groups listed best first (the JSON [2, [0, 3], 1] is
// {{2}, {0, 3}, {1}}): rank[i] = index of the group holding i, -1 for a response in no group.
// Throws on an index outside [0, k), an index listed twice, or an empty group.
std::vector<int> ranks_from_groups(const std::vector<std::vector<int>>& groups, int k);

// The inverse: groups best first, indices ascending within a group, missing (-1) responses left out.
std::vector<std::vector<int>> groups_from_ranks(const std::vector<int>& rank);

// ---- coefficients --------------------------------------------------------------------------------------

// Kendall's tau-b over the indices ranked by both (a[i] != -1 and b[i] != -1):
// tau_b = (C - D) / sqrt((n0 - n1) (n0 - n2)), n0 = n(n-1)/2, n1 / n2 = pairs tied in a / in b
// (scipy.stats.kendalltau, variant "b"). NaN when fewer than 2 common indices or either is all tied.
double kendall_tau_b(const std::vector<int>& a, const std::vector<int>& b);

// Krippendorff's alpha for raters x units data (data[r][u], NaN = missing): alpha = 1 - D_o / D_e with the
// coincidence matrix o_ck = sum_u n_uc n_uk' / (m_u - 1) (n_uk' = n_uk - [c == k]) over units with m_u >= 2
// values (units with fewer are dropped), n_c = sum_k o_ck, e_ck = (n_c n_k - [c == k] n_c) / (n - 1),
// D_o = sum o_ck d_ck, D_e = sum e_ck d_ck; the categories are the distinct values present, in order.
// Exactly the `krippendorff` package's alpha(reliability_data=..., level_of_measurement=...). NaN when it
// raises (fewer than 2 distinct values, no unit with 2 values) or D_e = 0. Values must be finite or NaN.
// ordinal:  d_ck = (sum_{g = min(c,k)}^{max(c,k)} n_g - (n_c + n_k) / 2)^2
double krippendorff_alpha_ordinal(const std::vector<std::vector<double>>& data);
// interval: d_ck = (v_c - v_k)^2
double krippendorff_alpha_interval(const std::vector<std::vector<double>>& data);
// nominal:  d_ck = [c != k]
double krippendorff_alpha_nominal(const std::vector<std::vector<double>>& data);

// Kendall's coefficient of concordance for m raters x n objects (ranks[r][i]), on mid-ranks with the tie
// correction: W = 12 S / (m^2 (n^3 - n) - m sum_r T_r), S = sum_i (R_i - m (n + 1) / 2)^2, R_i = sum_r
// midrank_r(i), T_r = sum over rater r's tie groups of (t^3 - t). Raters with a missing (-1) entry are left
// out. NaN when fewer than 2 raters remain, n < 2, or the denominator is 0 (every rater ties everything).
double kendall_w(const std::vector<std::vector<int>>& ranks);

// ---- a whole task --------------------------------------------------------------------------------------

struct RaterRanking {  // one rater's label of one item
  int64_t rater;
  std::vector<int> rank;
};

struct PerRaterAgreement {
  int64_t rater;
  double agreement = NAN;         // agreeing / pairs: this rater against every other rater on shared items
  int64_t pairs = 0;              // comparisons counted (rank mode: (other rater, response pair); pairs mode: other rater)
  int64_t overlapping_items = 0;  // items this rater labelled together with at least one other rater
};

struct Agreement {
  // Rank mode: over (item, rater pair, response pair) where BOTH raters order the two responses strictly,
  // the fraction in the same direction (InstructGPT's "inter-annotator agreement"). Pairs mode: over
  // (item, rater pair) where both choices are non-zero, the fraction with the same sign.
  double pairwise = NAN;
  int64_t pairs = 0;
  double kendall_tau = NAN;  // mean tau-b over (item, rater pair) where defined (rank mode only)
  int64_t tau_pairs = 0;
  // Ordinal alpha. Rank mode: units = (item, response), value = the rater's dense rank group of that
  // response, one row per rater. Pairs mode: units = items, value = the choice.
  double krippendorff_alpha = NAN;
  double kendall_w = NAN;  // mean W over items with >= 2 raters who ranked every response, where defined
  int64_t w_items = 0;     // items that W was averaged over
  int64_t items_with_overlap = 0;           // items labelled by >= 2 raters
  std::vector<PerRaterAgreement> per_rater;  // every rater who appears, sorted by rater id
};

// One vector per item. All rank vectors of one item have the same length; a rater appears once per item.
Agreement rank_agreement(const std::vector<std::vector<RaterRanking>>& items);

// Pairs mode: A vs B on a five-point scale, choice in -2..2 (negative = A better, 0 = about the same).
struct RaterChoice {
  int64_t rater;
  int choice;
};
Agreement choice_agreement(const std::vector<std::vector<RaterChoice>>& items);

// ---- consensus of several raters' rankings of one item -------------------------------------------------

// Mean rank: m_i = mean of mid_ranks(ranks[r])[i] over the raters who ranked i (lower is better); returned
// as dense rank groups where exactly equal means are a tie; -1 for a response nobody ranked.
std::vector<int> consensus_mean_rank(const std::vector<std::vector<int>>& ranks);

// Tideman's ranked pairs. s(i, j) = #raters ranking i strictly above j (both ranked). Every pair with
// s(i, j) > s(j, i) is a majority i > j; s(i, j) == s(j, i) is a tie (no edge). Majorities are taken by
// strength: margin s(i, j) - s(j, i) descending, then s(i, j) descending; pairs equal in both form one tier
// (no order by index, so the result does not depend on how responses are numbered). Each pair of a tier is
// locked unless the pairs locked in earlier tiers already lead from j to i; when the pairs of one tier
// together close a cycle, the responses on it form one tie group (strongly connected components). The groups
// are the layers of the locked graph: group 0 = responses that nothing locked beats, then repeatedly those
// beaten only by earlier groups. -1 for a response nobody ranked.
std::vector<int> consensus_ranked_pairs(const std::vector<std::vector<int>>& ranks);

}  // namespace rlhf::label
