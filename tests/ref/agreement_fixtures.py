#!/usr/bin/env python3
"""Reference values for the inter-rater agreement metrics (src/label/agreement.h; LabelAgreement.* in
tests/test_label_agreement.cpp compare with them within 1e-9).

  agreement_fixtures.py --out BUILD/tests/agreement_fixtures

Writes OUT/agreement.json from a fixed seed (the same bytes every run; the file is left untouched when
unchanged): {"cases": [...]} where a case is one of
  {"kind": "rank", "items": [[{"rater": id, "rank": [...]}, ...], ...], "expected": {Agreement fields},
   "tau": [{"item": i, "a": rater, "b": rater, "value": tau_b | null}], "w": [{"item": i, "value": W | null}],
   "mean_rank": [[...] per item], "ranked_pairs": [[...] per item]}
  {"kind": "choice", "items": [[{"rater": id, "choice": -2..2}, ...], ...], "expected": {...}}
  {"kind": "alpha", "data": raters x units (null = missing), "ordinal": a, "interval": a, "nominal": a}
Rank vectors: rank[i] = group of response i (0 = best, equal = tie, -1 = not ranked). null = NaN.
The values come from the krippendorff package (alpha), scipy.stats.kendalltau (variant "b"),
scipy.stats.rankdata (mid-ranks for Kendall's W, written out here) and plain loops (pairwise agreement,
per rater, consensus). Needs /work/main/.venv (numpy, scipy, krippendorff 0.8.1)."""
import argparse
import itertools
import json
import math
import os
import random
import warnings

import krippendorff
import numpy as np
from scipy import stats

SEED = 20240717


def nan_to_none(x):
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def k_alpha(data, level):
    arr = np.array([[np.nan if v is None else float(v) for v in row] for row in data], dtype=float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nan_to_none(krippendorff.alpha(reliability_data=arr, level_of_measurement=level))
    except ValueError:  # fewer than 2 values in the domain, or no unit with 2 values
        return None


def tau_b(a, b):
    idx = [i for i in range(len(a)) if a[i] != -1 and b[i] != -1]
    if len(idx) < 2:
        return None
    x = [a[i] for i in idx]
    y = [b[i] for i in idx]
    if len(set(x)) == 1 or len(set(y)) == 1:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nan_to_none(stats.kendalltau(x, y, variant="b")[0])


def kendall_w(ranks):
    rows = [r for r in ranks if -1 not in r]
    m = len(rows)
    if m < 2 or not rows or len(rows[0]) < 2:
        return None
    n = len(rows[0])
    R = np.zeros(n)
    T = 0.0
    for r in rows:
        R += stats.rankdata(r)  # average ranks for ties
        _, counts = np.unique(r, return_counts=True)
        T += float(np.sum(counts.astype(float) ** 3 - counts))
    S = float(np.sum((R - m * (n + 1) / 2.0) ** 2))
    denom = m * m * (n ** 3 - n) - m * T
    if denom <= 0:
        return None
    return 12.0 * S / denom


def dense(rank):
    values = sorted(set(v for v in rank if v != -1))
    return [-1 if v == -1 else values.index(v) for v in rank]


def mean_rank(ranks):
    k = len(ranks[0])
    sums = [0.0] * k
    counts = [0] * k
    for r in ranks:
        idx = [i for i in range(k) if r[i] != -1]
        if not idx:
            continue
        mids = stats.rankdata([r[i] for i in idx])
        for i, m in zip(idx, mids):
            sums[i] += float(m)
            counts[i] += 1
    means = [sums[i] / counts[i] if counts[i] else None for i in range(k)]
    distinct = sorted(set(m for m in means if m is not None))
    return [-1 if m is None else distinct.index(m) for m in means]


def ranked_pairs(ranks):
    """Ranked pairs as documented in agreement.h: tiers of equal (margin, support), each pair checked
    against the earlier tiers only, cycles of a tier become ties, groups = layers."""
    k = len(ranks[0])
    s = [[0] * k for _ in range(k)]
    ranked = [any(r[i] != -1 for r in ranks) for i in range(k)]
    for r in ranks:
        for i in range(k):
            for j in range(k):
                if r[i] != -1 and r[j] != -1 and r[i] < r[j]:
                    s[i][j] += 1
    majorities = [(s[i][j] - s[j][i], s[i][j], i, j) for i in range(k) for j in range(k) if s[i][j] > s[j][i]]
    edges = set()

    def reaches(a, b, es):
        seen, todo = {a}, [a]
        while todo:
            u = todo.pop()
            if u == b:
                return True
            for (x, y) in es:
                if x == u and y not in seen:
                    seen.add(y)
                    todo.append(y)
        return False

    for key, tier in itertools.groupby(sorted(majorities, key=lambda t: (-t[0], -t[1])), key=lambda t: (t[0], t[1])):
        tier = list(tier)
        accepted = [(i, j) for (_, _, i, j) in tier if not reaches(j, i, edges)]
        edges |= set(accepted)
    reach = [[reaches(i, j, edges) for j in range(k)] for i in range(k)]
    out = [-1] * k
    remaining = {i for i in range(k) if ranked[i]}
    group = 0
    while remaining:
        layer = [v for v in sorted(remaining)
                 if not any(reach[u][v] and not reach[v][u] for u in remaining if u != v)]
        assert layer
        for v in layer:
            out[v] = group
            remaining.discard(v)
        group += 1
    return out


def summary_rank(items):
    raters = sorted({l["rater"] for item in items for l in item})
    agree = pairs = 0
    per = {r: {"agree": 0, "pairs": 0, "overlapping_items": 0} for r in raters}
    taus, ws, tau_list, w_list = [], [], [], []
    overlap = 0
    for it, item in enumerate(items):
        if len(item) >= 2:
            overlap += 1
            for l in item:
                per[l["rater"]]["overlapping_items"] += 1
        for la, lb in itertools.combinations(item, 2):
            a, b = la["rank"], lb["rank"]
            k = len(a)
            p = same = 0
            for i, j in itertools.combinations(range(k), 2):
                if -1 in (a[i], a[j], b[i], b[j]) or a[i] == a[j] or b[i] == b[j]:
                    continue
                p += 1
                same += (a[i] < a[j]) == (b[i] < b[j])
            pairs += p
            agree += same
            for r in (la["rater"], lb["rater"]):
                per[r]["pairs"] += p
                per[r]["agree"] += same
            t = tau_b(a, b)
            tau_list.append({"item": it, "a": la["rater"], "b": lb["rater"], "value": t})
            if t is not None:
                taus.append(t)
        if len(item) >= 2:
            w = kendall_w([l["rank"] for l in item])
            w_list.append({"item": it, "value": w})
            if w is not None:
                ws.append(w)
    # Krippendorff: one row per rater, one unit per (item, response), value = the dense rank group.
    columns = []
    for item in items:
        k = len(item[0]["rank"]) if item else 0
        by_rater = {l["rater"]: dense(l["rank"]) for l in item}
        for i in range(k):
            columns.append([None if r not in by_rater or by_rater[r][i] == -1 else by_rater[r][i] for r in raters])
    data = [[col[ri] for col in columns] for ri in range(len(raters))]
    expected = {
        "pairwise": agree / pairs if pairs else None, "pairs": pairs,
        "kendall_tau": float(np.mean(taus)) if taus else None, "tau_pairs": len(taus),
        "krippendorff_alpha": k_alpha(data, "ordinal") if data and columns else None,
        "kendall_w": float(np.mean(ws)) if ws else None, "w_items": len(ws),
        "items_with_overlap": overlap,
        "per_rater": [{"rater": r, "agreement": per[r]["agree"] / per[r]["pairs"] if per[r]["pairs"] else None,
                       "pairs": per[r]["pairs"], "overlapping_items": per[r]["overlapping_items"]} for r in raters],
    }
    return expected, tau_list, w_list


def summary_choice(items):
    raters = sorted({l["rater"] for item in items for l in item})
    agree = pairs = overlap = 0
    per = {r: {"agree": 0, "pairs": 0, "overlapping_items": 0} for r in raters}
    for item in items:
        if len(item) >= 2:
            overlap += 1
            for l in item:
                per[l["rater"]]["overlapping_items"] += 1
        for la, lb in itertools.combinations(item, 2):
            if la["choice"] == 0 or lb["choice"] == 0:
                continue
            same = (la["choice"] > 0) == (lb["choice"] > 0)
            pairs += 1
            agree += same
            for r in (la["rater"], lb["rater"]):
                per[r]["pairs"] += 1
                per[r]["agree"] += same
    data = [[next((l["choice"] for l in item if l["rater"] == r), None) for item in items] for r in raters]
    return {
        "pairwise": agree / pairs if pairs else None, "pairs": pairs,
        "kendall_tau": None, "tau_pairs": 0,
        "krippendorff_alpha": k_alpha(data, "ordinal") if data and items else None,
        "kendall_w": None, "w_items": 0, "items_with_overlap": overlap,
        "per_rater": [{"rater": r, "agreement": per[r]["agree"] / per[r]["pairs"] if per[r]["pairs"] else None,
                       "pairs": per[r]["pairs"], "overlapping_items": per[r]["overlapping_items"]} for r in raters],
    }


def random_rank(rng, truth, p_missing, noise):
    """A noisy copy of the true order, cut into a random number of tie groups, some entries missing."""
    k = len(truth)
    scores = [truth[i] + rng.gauss(0, noise) for i in range(k)]
    order = sorted(range(k), key=lambda i: scores[i])
    n_groups = 1 if rng.random() < 0.08 else rng.randint(2, k)  # all tied now and then
    cuts = sorted(rng.sample(range(1, k), n_groups - 1)) if n_groups > 1 else []
    rank = [0] * k
    stretch = rng.choice([1, 1, 2])  # groups need not be dense
    g = 0
    for pos, i in enumerate(order):
        while g < len(cuts) and pos >= cuts[g]:
            g += 1
        rank[i] = g * stretch
    rank = [-1 if rng.random() < p_missing else v for v in rank]
    return rank


def rank_case(rng):
    k = rng.randint(2, 6)
    n_raters = rng.randint(1, 5)
    raters = rng.sample(range(1, 1000), n_raters)
    n_items = rng.randint(1, 8)
    p_missing = rng.choice([0.0, 0.0, 0.1, 0.25])
    noise = rng.choice([0.3, 1.0, 3.0])
    items = []
    for _ in range(n_items):
        truth = list(range(k))
        rng.shuffle(truth)
        who = rng.sample(raters, rng.randint(1, n_raters))
        items.append([{"rater": r, "rank": random_rank(rng, truth, p_missing, noise)} for r in who])
    expected, tau_list, w_list = summary_rank(items)
    mean = [mean_rank([l["rank"] for l in item]) for item in items]
    pairs = [ranked_pairs([l["rank"] for l in item]) for item in items]
    return {"kind": "rank", "items": items, "expected": expected, "tau": tau_list, "w": w_list,
            "mean_rank": mean, "ranked_pairs": pairs}


def choice_case(rng):
    n_raters = rng.randint(1, 5)
    raters = rng.sample(range(1, 1000), n_raters)
    items = []
    for _ in range(rng.randint(1, 12)):
        truth = rng.uniform(-2.5, 2.5)
        who = rng.sample(raters, rng.randint(1, n_raters))
        items.append([{"rater": r, "choice": max(-2, min(2, round(truth + rng.gauss(0, 1.2))))} for r in who])
    return {"kind": "choice", "items": items, "expected": summary_choice(items)}


def alpha_case(rng):
    n_raters = rng.randint(2, 5)
    n_units = rng.randint(1, 15)
    values = sorted(round(rng.uniform(-3, 5), 2) for _ in range(rng.randint(1, 5)))
    p_missing = rng.choice([0.0, 0.2, 0.4])
    data = [[None if rng.random() < p_missing else rng.choice(values) for _ in range(n_units)]
            for _ in range(n_raters)]
    return {"kind": "alpha", "data": data, "ordinal": k_alpha(data, "ordinal"),
            "interval": k_alpha(data, "interval"), "nominal": k_alpha(data, "nominal")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rng = random.Random(SEED)
    cases = [rank_case(rng) for _ in range(50)]
    cases += [choice_case(rng) for _ in range(15)]
    cases += [alpha_case(rng) for _ in range(25)]
    text = json.dumps({"seed": SEED, "cases": cases}, indent=None, separators=(",", ":"), allow_nan=False) + "\n"
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "agreement.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
