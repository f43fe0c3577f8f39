"""Independent reference for src/align/losses: the preference losses written from their papers / TRL's
formulas in plain PyTorch (float64), with gradients, on fixed inputs. Writes JSON for
tests/test_losses.cpp.  Run: /usr/bin/python3 tests/ref/ref_losses.py --out FILE
"""
import argparse, json

import torch
import torch.nn.functional as F

torch.manual_seed(0)
N = 7
PC = torch.randn(N, dtype=torch.float64) * 3 - 20
PR = torch.randn(N, dtype=torch.float64) * 3 - 21
RC = torch.randn(N, dtype=torch.float64) * 3 - 20
RR = torch.randn(N, dtype=torch.float64) * 3 - 20


def dpo(kind, beta, ls, gamma, pc, pr, rc, rr):
    if kind == "simpo":
        logits = beta * (pc - pr) - gamma
        return -F.logsigmoid(logits) * (1 - ls) - F.logsigmoid(-logits) * ls
    logits = (pc - pr) - (rc - rr)
    if kind == "sigmoid":
        return -F.logsigmoid(beta * logits) * (1 - ls) - F.logsigmoid(-beta * logits) * ls
    if kind == "robust":
        return (-F.logsigmoid(beta * logits) * (1 - ls) + F.logsigmoid(-beta * logits) * ls) / (1 - 2 * ls)
    if kind == "hinge":
        return torch.relu(1 - beta * logits)
    if kind == "ipo":
        return (logits - 1 / (2 * beta)) ** 2
    raise ValueError(kind)


def with_grads(fn, *xs):
    xs = [x.clone().requires_grad_(True) for x in xs]
    out = fn(*xs)
    out.sum().backward()
    return {"loss": out.detach().tolist(),
            "grads": [(x.grad if x.grad is not None else torch.zeros_like(x)).tolist() for x in xs]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    res = {"inputs": {"pc": PC.tolist(), "pr": PR.tolist(), "rc": RC.tolist(), "rr": RR.tolist()}, "dpo": [], "bt": [], "kto": []}
    for kind, beta, ls, gamma in [("sigmoid", 0.1, 0.0, 0), ("sigmoid", 0.5, 0.2, 0), ("robust", 0.1, 0.1, 0),
                                  ("hinge", 0.1, 0.0, 0), ("hinge", 1.0, 0.0, 0), ("ipo", 0.1, 0.0, 0),
                                  ("ipo", 0.5, 0.0, 0), ("simpo", 2.0, 0.0, 0.5), ("simpo", 2.5, 0.1, 1.0)]:
        # IPO and SimPO take per-token averages: feed averages over a fixed length.
        scale = 1 / 13.0 if kind in ("ipo", "simpo") else 1.0
        r = with_grads(lambda pc, pr, rc, rr: dpo(kind, beta, ls, gamma, pc, pr, rc, rr),
                       PC * scale, PR * scale, RC * scale, RR * scale)
        r.update({"kind": kind, "beta": beta, "label_smoothing": ls, "gamma": gamma, "scale": scale})
        res["dpo"].append(r)
    rc, rr = PC / 10, PR / 10
    margin = torch.tensor([0, 0.5, 1, 0, 0, 2, 0.1], dtype=torch.float64)
    p = torch.tensor([float("nan"), 0.7, 1.0, 0.0, 0.5, float("nan"), 0.9], dtype=torch.float64)

    def bt(rc, rr):
        d = rc - rr - margin
        hard = -F.logsigmoid(d)
        pp = torch.where(torch.isnan(p), torch.ones_like(p), p)
        soft = -(pp * F.logsigmoid(d) + (1 - pp) * F.logsigmoid(-d))
        return torch.where(torch.isnan(p), hard, soft)

    r = with_grads(bt, rc, rr)
    r.update({"margin": margin.tolist(), "p_chosen": [None if x != x else x for x in p.tolist()]})
    res["bt"].append(r)
    # Centering term of TRL's RewardTrainer: coef * (r_c + r_r)^2.
    r = with_grads(lambda a, b: 0.01 * (a + b) ** 2, rc, rr)
    r["coef"] = 0.01
    res["centering"] = r
    # KTO: desirable: 1 - s(beta (logratio - z0)), undesirable: 1 - s(beta (z0 - logratio)).
    logratio = (PC - RC) / 5
    label = torch.tensor([1, 0, 1, 1, 0, 0, 1], dtype=torch.float64)
    z0 = torch.clamp(logratio.mean(), min=0).item()
    for beta, wd, wu in [(0.1, 1.0, 1.0), (0.5, 1.0, 1.33)]:
        def kto(lr):
            good = wd * (1 - torch.sigmoid(beta * (lr - z0)))
            bad = wu * (1 - torch.sigmoid(beta * (z0 - lr)))
            return torch.where(label > 0, good, bad)
        r = with_grads(kto, logratio)
        r.update({"beta": beta, "wd": wd, "wu": wu, "z0": z0, "logratio": logratio.tolist(), "label": label.tolist()})
        res["kto"].append(r)
    with open(a.out, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main()
