// Inter-rater agreement for the human labelling app (issue 17): tau-b, Krippendorff's alpha, Kendall's W,
// pairwise and per-rater agreement over a task, and consensus rankings. See agreement.h for the formulas;
// tests/test_label_agreement.cpp checks them against tests/ref/agreement_fixtures.py (scipy, krippendorff).
#include "label/agreement.h"

#include <algorithm>
#include <cstddef>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <utility>

#include "core/error.h"

namespace rlhf::label {
namespace agreement_impl {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

int sign(int x) { return (x > 0) - (x < 0); }

void check_rank(const std::vector<int>& rank, const char* what) {
  for (int v : rank) RLHF_CHECK(v >= -1, what, ": rank value ", v, " (expected a group >= 0, or -1 for not ranked)");
}

// Every row has the same length and valid rank values; returns that length (0 for no rows).
size_t check_rows(const std::vector<std::vector<int>>& ranks, const char* what) {
  if (ranks.empty()) return 0;
  size_t k = ranks[0].size();
  for (const auto& r : ranks) {
    RLHF_CHECK(r.size() == k, what, ": rankings of different lengths (", k, " and ", r.size(), ")");
    check_rank(r, what);
  }
  return k;
}

bool complete(const std::vector<int>& rank) {
  return std::none_of(rank.begin(), rank.end(), [](int v) { return v == -1; });
}

enum class Level { nominal, ordinal, interval };

// Krippendorff's alpha over units given as their lists of values (missing values already left out),
// following the krippendorff package's alpha() step by step (see agreement.h).
double alpha_of_units(const std::vector<std::vector<double>>& units, Level level) {
  std::vector<double> domain;
  for (const auto& u : units) domain.insert(domain.end(), u.begin(), u.end());
  std::sort(domain.begin(), domain.end());
  domain.erase(std::unique(domain.begin(), domain.end()), domain.end());
  const size_t V = domain.size();
  if (V <= 1) return kNaN;  // the package: "There has to be more than one value in the domain."
  bool pairable_unit = std::any_of(units.begin(), units.end(), [](const auto& u) { return u.size() >= 2; });
  if (!pairable_unit) return kNaN;  // "... at least one unit with values assigned by at least two coders."

  // Coincidences o_ck = sum_u n_uc (n_uk - [c == k]) / (m_u - 1) over units with m_u >= 2.
  std::vector<double> o(V * V, 0.0);
  std::map<size_t, double> counts;
  for (const auto& u : units) {
    if (u.size() < 2) continue;
    counts.clear();
    for (double v : u) {
      size_t c = static_cast<size_t>(std::lower_bound(domain.begin(), domain.end(), v) - domain.begin());
      counts[c] += 1.0;
    }
    const double denom = static_cast<double>(u.size()) - 1.0;
    for (const auto& [c, nc] : counts)
      for (const auto& [k, nk] : counts) o[c * V + k] += nc * (nk - (c == k ? 1.0 : 0.0)) / denom;
  }
  std::vector<double> n_v(V, 0.0);
  for (size_t c = 0; c < V; ++c)
    for (size_t k = 0; k < V; ++k) n_v[k] += o[c * V + k];
  const double n = std::accumulate(n_v.begin(), n_v.end(), 0.0);

  // Prefix sums of n_v for the ordinal distance.
  std::vector<double> cum(V + 1, 0.0);
  for (size_t g = 0; g < V; ++g) cum[g + 1] = cum[g] + n_v[g];
  auto distance = [&](size_t c, size_t k) -> double {
    switch (level) {
      case Level::nominal:
        return c == k ? 0.0 : 1.0;
      case Level::interval: {
        double d = domain[c] - domain[k];
        return d * d;
      }
      case Level::ordinal: {
        size_t lo = std::min(c, k), hi = std::max(c, k);
        double d = (cum[hi + 1] - cum[lo]) - (n_v[lo] + n_v[hi]) / 2.0;
        return d * d;
      }
    }
    return 0.0;
  };

  double d_o = 0.0, d_e = 0.0;
  for (size_t c = 0; c < V; ++c)
    for (size_t k = 0; k < V; ++k) {
      double d = distance(c, k);
      d_o += o[c * V + k] * d;
      d_e += (n_v[c] * n_v[k] - (c == k ? n_v[c] : 0.0)) / (n - 1.0) * d;
    }
  if (!(d_e > 0.0)) return kNaN;  // every pairable value the same: the package gives 0/0 = nan
  return 1.0 - d_o / d_e;
}

// Raters x units (NaN = missing) to the values of each unit.
std::vector<std::vector<double>> units_of(const std::vector<std::vector<double>>& data) {
  if (data.empty()) return {};
  const size_t n_units = data[0].size();
  std::vector<std::vector<double>> units(n_units);
  for (const auto& row : data) {
    RLHF_CHECK(row.size() == n_units, "krippendorff_alpha: raters with different numbers of units (", n_units,
               " and ", row.size(), ")");
    for (size_t u = 0; u < n_units; ++u) {
      if (std::isnan(row[u])) continue;
      RLHF_CHECK(std::isfinite(row[u]), "krippendorff_alpha: value ", row[u], " (expected a finite number or NaN)");
      units[u].push_back(row[u]);
    }
  }
  return units;
}

// Per-rater tallies of the pairwise comparisons.
struct Tally {
  int64_t agree = 0, pairs = 0, overlapping_items = 0;
};

double ratio(int64_t num, int64_t den) { return den > 0 ? static_cast<double>(num) / static_cast<double>(den) : kNaN; }

template <class Label>
void check_item_raters(const std::vector<Label>& item, size_t index) {
  std::set<int64_t> seen;
  for (const auto& l : item)
    RLHF_CHECK(seen.insert(l.rater).second, "agreement: rater ", l.rater, " labels item ", index, " twice");
}

std::vector<PerRaterAgreement> per_rater_of(const std::map<int64_t, Tally>& tallies) {
  std::vector<PerRaterAgreement> out;
  for (const auto& [rater, t] : tallies) {  // std::map: sorted by rater id
    PerRaterAgreement p{rater};
    p.agreement = ratio(t.agree, t.pairs);
    p.pairs = t.pairs;
    p.overlapping_items = t.overlapping_items;
    out.push_back(p);
  }
  return out;
}

}  // namespace
}  // namespace agreement_impl


// ---- rank vectors ------------------------------------------------------------------------------------

std::vector<double> mid_ranks(const std::vector<int>& rank) {
  agreement_impl::check_rank(rank, "mid_ranks");
  std::vector<size_t> order;
  for (size_t i = 0; i < rank.size(); ++i)
    if (rank[i] != -1) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return rank[x] < rank[y]; });
  std::vector<double> out(rank.size(), agreement_impl::kNaN);
  for (size_t start = 0; start < order.size();) {
    size_t end = start;
    while (end < order.size() && rank[order[end]] == rank[order[start]]) ++end;
    // positions start+1 .. end (1-based) share their average
    double mid = (static_cast<double>(start + 1) + static_cast<double>(end)) / 2.0;
    for (size_t p = start; p < end; ++p) out[order[p]] = mid;
    start = end;
  }
  return out;
}

std::vector<int> dense_ranks(const std::vector<int>& rank) {
  agreement_impl::check_rank(rank, "dense_ranks");
  std::vector<int> values;
  for (int v : rank)
    if (v != -1) values.push_back(v);
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  std::vector<int> out(rank.size(), -1);
  for (size_t i = 0; i < rank.size(); ++i)
    if (rank[i] != -1)
      out[i] = static_cast<int>(std::lower_bound(values.begin(), values.end(), rank[i]) - values.begin());
  return out;
}

std::vector<int> ranks_from_groups(const std::vector<std::vector<int>>& groups, int k) {
  RLHF_CHECK(k >= 0, "ranks_from_groups: ", k, " responses");
  std::vector<int> rank(static_cast<size_t>(k), -1);
  for (size_t g = 0; g < groups.size(); ++g) {
    RLHF_CHECK(!groups[g].empty(), "ranks_from_groups: group ", g, " is empty");
    for (int i : groups[g]) {
      RLHF_CHECK(i >= 0 && i < k, "ranks_from_groups: response index ", i, " out of range [0, ", k, ")");
      RLHF_CHECK(rank[static_cast<size_t>(i)] == -1, "ranks_from_groups: response index ", i, " listed twice");
      rank[static_cast<size_t>(i)] = static_cast<int>(g);
    }
  }
  return rank;
}

std::vector<std::vector<int>> groups_from_ranks(const std::vector<int>& rank) {
  std::vector<int> dense = dense_ranks(rank);
  int n_groups = 0;
  for (int v : dense) n_groups = std::max(n_groups, v + 1);
  std::vector<std::vector<int>> groups(static_cast<size_t>(n_groups));
  for (size_t i = 0; i < dense.size(); ++i)
    if (dense[i] != -1) groups[static_cast<size_t>(dense[i])].push_back(static_cast<int>(i));
  return groups;
}

// ---- coefficients --------------------------------------------------------------------------------------

double kendall_tau_b(const std::vector<int>& a, const std::vector<int>& b) {
  RLHF_CHECK(a.size() == b.size(), "kendall_tau_b: rankings of different lengths (", a.size(), " and ", b.size(), ")");
  agreement_impl::check_rank(a, "kendall_tau_b");
  agreement_impl::check_rank(b, "kendall_tau_b");
  std::vector<size_t> common;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != -1 && b[i] != -1) common.push_back(i);
  const int64_t n = static_cast<int64_t>(common.size());
  if (n < 2) return agreement_impl::kNaN;
  int64_t concordant = 0, discordant = 0, ties_a = 0, ties_b = 0;
  for (size_t x = 0; x < common.size(); ++x)
    for (size_t y = x + 1; y < common.size(); ++y) {
      int da = agreement_impl::sign(a[common[x]] - a[common[y]]);
      int db = agreement_impl::sign(b[common[x]] - b[common[y]]);
      ties_a += da == 0;
      ties_b += db == 0;
      concordant += da * db > 0;
      discordant += da * db < 0;
    }
  const int64_t n0 = n * (n - 1) / 2;
  if (ties_a == n0 || ties_b == n0) return agreement_impl::kNaN;
  double tau = static_cast<double>(concordant - discordant) /
               std::sqrt(static_cast<double>(n0 - ties_a) * static_cast<double>(n0 - ties_b));
  return std::clamp(tau, -1.0, 1.0);
}

double krippendorff_alpha_ordinal(const std::vector<std::vector<double>>& data) {
  return agreement_impl::alpha_of_units(agreement_impl::units_of(data), agreement_impl::Level::ordinal);
}

double krippendorff_alpha_interval(const std::vector<std::vector<double>>& data) {
  return agreement_impl::alpha_of_units(agreement_impl::units_of(data), agreement_impl::Level::interval);
}

double krippendorff_alpha_nominal(const std::vector<std::vector<double>>& data) {
  return agreement_impl::alpha_of_units(agreement_impl::units_of(data), agreement_impl::Level::nominal);
}

double kendall_w(const std::vector<std::vector<int>>& ranks) {
  const size_t n = agreement_impl::check_rows(ranks, "kendall_w");
  std::vector<const std::vector<int>*> rows;
  for (const auto& r : ranks)
    if (agreement_impl::complete(r)) rows.push_back(&r);
  const double m = static_cast<double>(rows.size());
  if (rows.size() < 2 || n < 2) return agreement_impl::kNaN;
  std::vector<double> sums(n, 0.0);
  double ties = 0.0;  // sum_r T_r
  for (const auto* r : rows) {
    std::vector<double> mid = mid_ranks(*r);
    for (size_t i = 0; i < n; ++i) sums[i] += mid[i];
    std::map<int, int64_t> group_sizes;
    for (int v : *r) ++group_sizes[v];
    for (const auto& [v, t] : group_sizes) ties += static_cast<double>(t * t * t - t);
  }
  const double nd = static_cast<double>(n);
  const double mean = m * (nd + 1.0) / 2.0;
  double s = 0.0;
  for (double R : sums) s += (R - mean) * (R - mean);
  const double denom = m * m * (nd * nd * nd - nd) - m * ties;
  if (!(denom > 0.0)) return agreement_impl::kNaN;
  return 12.0 * s / denom;
}

// ---- a whole task --------------------------------------------------------------------------------------

Agreement rank_agreement(const std::vector<std::vector<RaterRanking>>& items) {
  using agreement_impl::Tally;
  Agreement out;
  std::map<int64_t, Tally> tallies;
  int64_t agree = 0;
  double tau_sum = 0.0, w_sum = 0.0;
  std::vector<std::vector<double>> units;  // (item, response) -> the raters' dense rank groups
  for (size_t it = 0; it < items.size(); ++it) {
    const auto& item = items[it];
    agreement_impl::check_item_raters(item, it);
    std::vector<std::vector<int>> ranks;
    for (const auto& l : item) ranks.push_back(l.rank);
    const size_t k = agreement_impl::check_rows(ranks, "rank_agreement");
    for (const auto& l : item) tallies.try_emplace(l.rater);

    const size_t first_unit = units.size();
    units.resize(first_unit + k);
    for (const auto& r : ranks) {
      std::vector<int> dense = dense_ranks(r);
      for (size_t i = 0; i < k; ++i)
        if (dense[i] != -1) units[first_unit + i].push_back(dense[i]);
    }
    if (item.size() < 2) continue;

    ++out.items_with_overlap;
    for (const auto& l : item) ++tallies[l.rater].overlapping_items;
    for (size_t x = 0; x < item.size(); ++x)
      for (size_t y = x + 1; y < item.size(); ++y) {
        const auto& a = item[x].rank;
        const auto& b = item[y].rank;
        int64_t pairs = 0, same = 0;
        for (size_t i = 0; i < k; ++i)
          for (size_t j = i + 1; j < k; ++j) {
            if (a[i] == -1 || a[j] == -1 || b[i] == -1 || b[j] == -1) continue;
            int da = agreement_impl::sign(a[i] - a[j]), db = agreement_impl::sign(b[i] - b[j]);
            if (da == 0 || db == 0) continue;
            ++pairs;
            same += da == db;
          }
        out.pairs += pairs;
        agree += same;
        for (int64_t rater : {item[x].rater, item[y].rater}) {
          tallies[rater].pairs += pairs;
          tallies[rater].agree += same;
        }
        double tau = kendall_tau_b(a, b);
        if (!std::isnan(tau)) {
          tau_sum += tau;
          ++out.tau_pairs;
        }
      }
    double w = kendall_w(ranks);
    if (!std::isnan(w)) {
      w_sum += w;
      ++out.w_items;
    }
  }
  out.pairwise = agreement_impl::ratio(agree, out.pairs);
  if (out.tau_pairs > 0) out.kendall_tau = tau_sum / static_cast<double>(out.tau_pairs);
  if (out.w_items > 0) out.kendall_w = w_sum / static_cast<double>(out.w_items);
  out.krippendorff_alpha = agreement_impl::alpha_of_units(units, agreement_impl::Level::ordinal);
  out.per_rater = agreement_impl::per_rater_of(tallies);
  return out;
}

Agreement choice_agreement(const std::vector<std::vector<RaterChoice>>& items) {
  using agreement_impl::Tally;
  Agreement out;
  std::map<int64_t, Tally> tallies;
  int64_t agree = 0;
  std::vector<std::vector<double>> units;  // item -> the raters' choices
  for (size_t it = 0; it < items.size(); ++it) {
    const auto& item = items[it];
    agreement_impl::check_item_raters(item, it);
    std::vector<double> unit;
    for (const auto& l : item) {
      RLHF_CHECK(l.choice >= -2 && l.choice <= 2, "choice_agreement: rater ", l.rater, " chose ", l.choice,
                 " on item ", it, " (expected -2..2)");
      tallies.try_emplace(l.rater);
      unit.push_back(l.choice);
    }
    units.push_back(std::move(unit));
    if (item.size() < 2) continue;

    ++out.items_with_overlap;
    for (const auto& l : item) ++tallies[l.rater].overlapping_items;
    for (size_t x = 0; x < item.size(); ++x)
      for (size_t y = x + 1; y < item.size(); ++y) {
        int sa = agreement_impl::sign(item[x].choice), sb = agreement_impl::sign(item[y].choice);
        if (sa == 0 || sb == 0) continue;
        ++out.pairs;
        agree += sa == sb;
        for (int64_t rater : {item[x].rater, item[y].rater}) {
          ++tallies[rater].pairs;
          tallies[rater].agree += sa == sb;
        }
      }
  }
  out.pairwise = agreement_impl::ratio(agree, out.pairs);
  out.krippendorff_alpha = agreement_impl::alpha_of_units(units, agreement_impl::Level::ordinal);
  out.per_rater = agreement_impl::per_rater_of(tallies);
  return out;
}

// ---- consensus -----------------------------------------------------------------------------------------

std::vector<int> consensus_mean_rank(const std::vector<std::vector<int>>& ranks) {
  const size_t k = agreement_impl::check_rows(ranks, "consensus_mean_rank");
  std::vector<double> sum(k, 0.0);
  std::vector<int64_t> count(k, 0);
  for (const auto& r : ranks) {
    std::vector<double> mid = mid_ranks(r);
    for (size_t i = 0; i < k; ++i)
      if (r[i] != -1) {
        sum[i] += mid[i];
        ++count[i];
      }
  }
  // Means of equal value are exactly equal doubles: the sums are exact (multiples of 1/2), and a correctly
  // rounded quotient depends only on the real value of sum / count.
  std::vector<double> mean(k, agreement_impl::kNaN), distinct;
  for (size_t i = 0; i < k; ++i)
    if (count[i] > 0) {
      mean[i] = sum[i] / static_cast<double>(count[i]);
      distinct.push_back(mean[i]);
    }
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<int> out(k, -1);
  for (size_t i = 0; i < k; ++i)
    if (count[i] > 0)
      out[i] = static_cast<int>(std::lower_bound(distinct.begin(), distinct.end(), mean[i]) - distinct.begin());
  return out;
}

std::vector<int> consensus_ranked_pairs(const std::vector<std::vector<int>>& ranks) {
  const size_t k = agreement_impl::check_rows(ranks, "consensus_ranked_pairs");
  std::vector<int64_t> s(k * k, 0);  // s[i * k + j] = raters ranking i strictly above j
  std::vector<bool> ranked(k, false);
  for (const auto& r : ranks)
    for (size_t i = 0; i < k; ++i) {
      if (r[i] == -1) continue;
      ranked[i] = true;
      for (size_t j = 0; j < k; ++j)
        if (r[j] != -1 && r[i] < r[j]) ++s[i * k + j];
    }

  struct Majority {
    size_t winner, loser;
    int64_t margin, support;
  };
  std::vector<Majority> majorities;
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j < k; ++j)
      if (s[i * k + j] > s[j * k + i]) majorities.push_back({i, j, s[i * k + j] - s[j * k + i], s[i * k + j]});
  auto stronger = [](const Majority& x, const Majority& y) {
    return x.margin != y.margin ? x.margin > y.margin : x.support > y.support;
  };
  std::stable_sort(majorities.begin(), majorities.end(), stronger);

  std::vector<bool> locked(k * k, false);
  auto reaches = [&](size_t from, size_t to) {  // a path of locked pairs from -> ... -> to
    std::vector<bool> seen(k, false);
    std::vector<size_t> stack{from};
    seen[from] = true;
    while (!stack.empty()) {
      size_t u = stack.back();
      stack.pop_back();
      if (u == to) return true;
      for (size_t v = 0; v < k; ++v)
        if (locked[u * k + v] && !seen[v]) {
          seen[v] = true;
          stack.push_back(v);
        }
    }
    return false;
  };
  for (size_t start = 0; start < majorities.size();) {
    size_t end = start;
    while (end < majorities.size() && !stronger(majorities[start], majorities[end]) &&
           !stronger(majorities[end], majorities[start]))
      ++end;
    std::vector<size_t> accepted;  // checked against the earlier tiers only, then locked together
    for (size_t p = start; p < end; ++p)
      if (!reaches(majorities[p].loser, majorities[p].winner)) accepted.push_back(p);
    for (size_t p : accepted) locked[majorities[p].winner * k + majorities[p].loser] = true;
    start = end;
  }

  // Transitive closure, then strongly connected components (ties) and layers.
  std::vector<bool> reach(k * k, false);
  for (size_t i = 0; i < k; ++i) {
    reach[i * k + i] = true;
    for (size_t j = 0; j < k; ++j)
      if (locked[i * k + j]) reach[i * k + j] = true;
  }
  for (size_t m = 0; m < k; ++m)
    for (size_t i = 0; i < k; ++i)
      if (reach[i * k + m])
        for (size_t j = 0; j < k; ++j)
          if (reach[m * k + j]) reach[i * k + j] = true;
  auto same_component = [&](size_t i, size_t j) { return reach[i * k + j] && reach[j * k + i]; };

  std::vector<int> out(k, -1);
  std::vector<bool> remaining = ranked;
  size_t left = static_cast<size_t>(std::count(ranked.begin(), ranked.end(), true));
  for (int group = 0; left > 0; ++group) {
    std::vector<size_t> layer;
    for (size_t v = 0; v < k; ++v) {
      if (!remaining[v]) continue;
      bool beaten = false;  // by a remaining response outside v's tie group (reach covers the whole group)
      for (size_t u = 0; u < k && !beaten; ++u)
        beaten = remaining[u] && reach[u * k + v] && !same_component(u, v);
      if (!beaten) layer.push_back(v);
    }
    RLHF_CHECK(!layer.empty(), "consensus_ranked_pairs: internal error (no layer)");
    for (size_t v : layer) {
      out[v] = group;
      remaining[v] = false;
      --left;
    }
  }
  return out;
}

}  // namespace rlhf::label
