"""One PPO iteration in PyTorch + transformers, written the way TRL's PPO trainer (trl 0.11
PPOv2Trainer, trl/trainer/ppo_trainer.py in later releases) does it, without importing trl: the
reference for bench/run_ppo.sh, which runs `rlhf ppo` with the same models, prompts and settings.

  python bench/ppo_step.py --policy DIR --reward DIR --prompts FILE.jsonl [--iterations 3]
      [--rollout-batch 16] [--max-new-tokens 32] [--ppo-epochs 4] [--mini-batches 1] [--lr 3e-6]
      [--kl-coef 0.05] [--dtype fp32|bf16] [--threads N] [--lora] [--full-critic] [--seed 42]

Models: policy = AutoModelForCausalLM(--policy); reference = a second copy (with --lora: the policy
with its adapters disabled); critic = AutoModelForSequenceClassification(--reward, num_labels=1),
value per token = score(last hidden state) (TRL initialises the critic from the reward model);
reward model = another copy of --reward, scored at the last real token of prompt + response.
Fp32 weights; bf16 = torch.autocast(device, bfloat16) around the forward passes; --device cuda runs on a GPU.
--lora: PEFT LoRA (r 16, alpha 32, no dropout, c_attn/c_proj/c_fc, fan_in_fan_out) on the policy
and, as `rlhf ppo --lora` does, on the critic (whose score head stays trainable); --full-critic
trains the whole critic instead, as TRL's PPOTrainer does with a peft_config. No LoRA dropout, as
TRL's disable_dropout_in_model leaves none and `rlhf ppo`'s --lora-dropout defaults to 0.
One iteration: (a) rollout: policy.generate (sampling, temperature 1, no top-k/top-p) and the
log-probs of the sampled tokens from the generation scores, responses cut after the first EOS;
(b) score: reference log-probs, critic values, reward-model scores; (c) per-token rewards
-kl_coef * (logp - ref_logp) plus the score at the last response token, GAE (gamma 1, lam 0.95),
whitened advantages; (d) ppo_epochs x mini_batches: clipped policy loss (0.2) + vf_coef 0.1 x
clipped value loss (0.2), backward, clip_grad_norm 1.0, one AdamW (eps 1e-5) over policy and
critic (TRL's PolicyAndValueWrapper), linear learning-rate decay over the iterations.
Progress on stderr; one JSON line on stdout: the mean seconds of generate (a), score (b + c) and
train (d) over the iterations after the first (a warm-up).
"""
import argparse, contextlib, json, os, sys, time

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

INVALID_LOGPROB = 1.0  # TRL's filler for log-probs past the end of a response


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def special_id(tok, cfg, key):
    v = cfg.get(key)
    if isinstance(v, dict):
        v = v.get("content")
    return tok.token_to_id(v) if isinstance(v, str) else None


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum()


def masked_var(x, mask, unbiased=True):
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    if unbiased:
        n = mask.sum()
        var = var * n / (n - 1)
    return var


def masked_whiten(x, mask, shift_mean=True):
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    w = (x - mean) * torch.rsqrt(var + 1e-8)
    return w if shift_mean else w + mean


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", required=True)
    ap.add_argument("--reward", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--rollout-batch", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--ppo-epochs", type=int, default=4)
    ap.add_argument("--mini-batches", type=int, default=1)
    ap.add_argument("--lr", type=float, default=3e-6)
    ap.add_argument("--kl-coef", type=float, default=0.05)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--full-critic", action="store_true", help="with --lora: train all critic weights (TRL)")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    B, T = a.rollout_batch, a.max_new_tokens
    assert B % a.mini_batches == 0, "--rollout-batch must divide into --mini-batches"
    temperature, cliprange, cliprange_value, vf_coef, gamma, lam, max_grad_norm = 1.0, 0.2, 0.2, 0.1, 1.0, 0.95, 1.0
    amp = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if a.dtype == "bf16" else contextlib.nullcontext

    # tokenizer, prompts (the first B, left-padded; the same batch every iteration)
    tok = Tokenizer.from_file(os.path.join(a.policy, "tokenizer.json"))
    with open(os.path.join(a.policy, "tokenizer_config.json")) as f:
        tcfg = json.load(f)
    eos = special_id(tok, tcfg, "eos_token")
    pad = special_id(tok, tcfg, "pad_token")
    pad = eos if pad is None else pad
    assert eos is not None, "tokenizer_config.json names no eos_token"
    with open(a.prompts) as f:
        texts = [json.loads(line)["prompt"] for line in f if line.strip()]
    assert texts, f"{a.prompts}: no prompts"
    ids = [tok.encode(texts[i % len(texts)]).ids for i in range(B)]
    P = max(len(x) for x in ids)
    queries = torch.full((B, P), pad, dtype=torch.long)
    qmask = torch.zeros((B, P), dtype=torch.long)
    for i, x in enumerate(ids):
        queries[i, P - len(x):] = torch.tensor(x)
        qmask[i, P - len(x):] = 1
    queries, qmask = queries.to(dev), qmask.to(dev)

    # models (fp32 weights); TRL disables dropout in all four (disable_dropout_in_model)
    def no_dropout(m):
        for mod in m.modules():
            if isinstance(mod, torch.nn.Dropout):
                mod.p = 0.0
        return m

    policy = no_dropout(AutoModelForCausalLM.from_pretrained(a.policy, torch_dtype=torch.float32)).to(dev)
    critic = no_dropout(AutoModelForSequenceClassification.from_pretrained(a.reward, num_labels=1, torch_dtype=torch.float32)).to(dev)
    reward_model = no_dropout(AutoModelForSequenceClassification.from_pretrained(a.reward, num_labels=1, torch_dtype=torch.float32)).to(dev)
    reward_model.eval().requires_grad_(False)
    critic_backbone = getattr(critic, critic.base_model_prefix)  # TRL's PolicyAndValueWrapper.critic_backbone
    if a.lora:
        from peft import LoraConfig, get_peft_model

        def lora_cfg(task):
            return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["c_attn", "c_proj", "c_fc"],
                              fan_in_fan_out=True, bias="none", task_type=task)

        policy = get_peft_model(policy, lora_cfg("CAUSAL_LM"))
        ref_policy = None  # the reference is the policy with its adapters disabled (TRL's null_ref_context)
        if not a.full_critic:
            get_peft_model(critic, lora_cfg(None))  # injects adapters into critic in place, freezes the rest
            critic.score.weight.requires_grad_(True)
    else:
        ref_policy = no_dropout(AutoModelForCausalLM.from_pretrained(a.policy, torch_dtype=torch.float32)).to(dev)
        ref_policy.eval().requires_grad_(False)
    params = [p for p in list(policy.parameters()) + list(critic.parameters()) if p.requires_grad]
    n_train = sum(p.numel() for p in params)
    optimizer = torch.optim.AdamW(params, lr=a.lr, eps=1e-5, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: 1.0 - it / a.iterations)
    log(f"ppo_step: {B} prompts (prompt length {P}) x {T} new tokens, {a.iterations} iterations, {a.dtype}, "
        f"{torch.get_num_threads()} threads, lora {'on' if a.lora else 'off'}, {n_train} trainable parameters")

    def forward(model, qr, attn):  # TRL's forward(): padding-aware positions, hidden states kept
        pos = (attn.cumsum(1) - attn).long()
        return model(input_ids=qr.masked_fill(attn == 0, 0), attention_mask=attn, position_ids=pos,
                     return_dict=True, output_hidden_states=True)

    def critic_scores(model, backbone, qr, attn):  # TRL's get_reward(): score head on the last hidden state
        return model.score(forward(backbone, qr, attn).hidden_states[-1]).squeeze(-1)

    def response_logprobs(logits, resp):  # logits of the positions that predict resp
        lp = F.log_softmax(logits.float() / temperature, dim=-1)
        return torch.gather(lp, 2, resp.unsqueeze(-1)).squeeze(-1)

    times, lengths = [], []
    for it in range(a.iterations):
        # ---- (a) rollout ------------------------------------------------------------------------
        t0 = time.perf_counter()
        policy.eval()  # rollout and scoring without LoRA dropout (TRL has no dropout anywhere)
        critic.eval()
        with torch.no_grad(), amp():
            out = policy.generate(input_ids=queries, attention_mask=qmask, do_sample=True, temperature=temperature,
                                  top_k=0, top_p=1.0, max_new_tokens=T, pad_token_id=pad, eos_token_id=eos,
                                  output_scores=True, return_dict_in_generate=True)
            resp = out.sequences[:, P:]
            R = resp.shape[1]
            logprobs = response_logprobs(torch.stack(out.scores, 1), resp)
            del out
            # truncate after the first EOS (kept); pad after it
            idx = torch.arange(R, device=dev).unsqueeze(0)
            is_eos = resp == eos
            first_eos = torch.where(is_eos.any(1), is_eos.float().argmax(1), torch.full((B,), R - 1, device=dev))
            mask = idx <= first_eos.unsqueeze(1)  # real response tokens
            resp = resp.masked_fill(~mask, pad)
            qr = torch.cat([queries, resp], 1)
            attn = torch.cat([qmask, mask.long()], 1)
        sync()
        t1 = time.perf_counter()

        # ---- (b) reference log-probs, values, scores; (c) rewards, advantages -------------------
        with torch.no_grad():
            with amp():
                if ref_policy is not None:
                    ref_logits = forward(ref_policy, qr, attn).logits[:, P - 1:-1]
                else:
                    with policy.disable_adapter():
                        ref_logits = forward(policy, qr, attn).logits[:, P - 1:-1]
                ref_logprobs = response_logprobs(ref_logits, resp)
                del ref_logits
                values = critic_scores(critic, critic_backbone, qr, attn)[:, P - 1:-1].float()
                seq_end = P + mask.sum(1) - 1  # last real token of prompt + response
                scores = critic_scores(reward_model, getattr(reward_model, reward_model.base_model_prefix),
                                       qr, attn)[torch.arange(B, device=dev), seq_end].float()
            maskf = mask.float()
            logprobs = logprobs.masked_fill(~mask, INVALID_LOGPROB)
            ref_logprobs = ref_logprobs.masked_fill(~mask, INVALID_LOGPROB)
            values = values.masked_fill(~mask, 0)
            kl = logprobs - ref_logprobs
            rewards = -a.kl_coef * kl
            rewards[torch.arange(B, device=dev), mask.sum(1) - 1] += scores
            lastgaelam, adv_rev = 0, []
            for t in reversed(range(R)):
                nextvalues = values[:, t + 1] if t < R - 1 else 0.0
                delta = rewards[:, t] + gamma * nextvalues - values[:, t]
                lastgaelam = delta + gamma * lam * lastgaelam
                adv_rev.append(lastgaelam)
            advantages = torch.stack(adv_rev[::-1], 1)
            returns = advantages + values
            advantages = masked_whiten(advantages, maskf).masked_fill(~mask, 0)
        sync()
        t2 = time.perf_counter()

        # ---- (d) PPO epochs x mini-batches --------------------------------------------------------
        policy.train()
        critic.train()
        mb_size = B // a.mini_batches
        stats = []
        for _ in range(a.ppo_epochs):
            perm = torch.randperm(B).to(dev)
            for s in range(0, B, mb_size):
                mb = perm[s:s + mb_size]
                m, mf = mask[mb], maskf[mb]
                with amp():
                    out = forward(policy, qr[mb], attn[mb])
                    vpred = critic.score(forward(critic_backbone, qr[mb], attn[mb]).hidden_states[-1])
                logits = out.logits[:, P - 1:-1].float() / temperature
                new_logprobs = torch.gather(F.log_softmax(logits, -1), 2, resp[mb].unsqueeze(-1)).squeeze(-1)
                new_logprobs = new_logprobs.masked_fill(~m, INVALID_LOGPROB)
                vpred = vpred[:, P - 1:-1].squeeze(-1).float().masked_fill(~m, 0)
                mb_values, mb_returns, mb_adv = values[mb], returns[mb], advantages[mb]
                vpredclipped = torch.clamp(vpred, mb_values - cliprange_value, mb_values + cliprange_value)
                vf_losses = torch.max((vpred - mb_returns) ** 2, (vpredclipped - mb_returns) ** 2)
                vf_loss = 0.5 * masked_mean(vf_losses, mf)
                ratio = torch.exp(new_logprobs - logprobs[mb])
                pg_losses = torch.max(-mb_adv * ratio, -mb_adv * torch.clamp(ratio, 1 - cliprange, 1 + cliprange))
                pg_loss = masked_mean(pg_losses, mf)
                loss = pg_loss + vf_coef * vf_loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
                with torch.no_grad():  # TRL's per-micro-batch statistics
                    prob = F.softmax(logits, -1)
                    entropy = torch.logsumexp(logits, -1) - (prob * logits).sum(-1)
                    stats.append([pg_loss.item(), vf_loss.item(), masked_mean(entropy, mf).item(),
                                  0.5 * masked_mean((new_logprobs - logprobs[mb]) ** 2, mf).item()])
                del out, logits, loss
        scheduler.step()
        sync()
        t3 = time.perf_counter()
        n_tok = int(mask.sum())
        times.append((t1 - t0, t2 - t1, t3 - t2))
        lengths.append(n_tok)
        st = [sum(x) / len(stats) for x in zip(*stats)]
        log(f"iteration {it + 1}/{a.iterations}{' (warm-up)' if it == 0 else ''}: generate {t1 - t0:.3f} s, "
            f"score {t2 - t1:.3f} s, train {t3 - t2:.3f} s; {n_tok} response tokens, score {scores.mean():.3f}, "
            f"kl {(kl * maskf).sum(1).mean():.3f}, pg loss {st[0]:.4f}, vf loss {st[1]:.4f}, entropy {st[2]:.3f}")

    timed = times[1:] or times
    tl = lengths[1:] or lengths
    g, s, t = (sum(x[k] for x in timed) / len(timed) for k in range(3))
    print(json.dumps({"impl": "pytorch-python", "threads": torch.get_num_threads(), "dtype": a.dtype, "lora": a.lora,
                      "device": a.device, "rollout_batch": B, "max_new_tokens": T, "prompt_length": P,
                      "generated_tokens_per_iteration": sum(tl) / len(tl),
                      "mean_response_length": sum(tl) / len(tl) / B, "timed_iterations": len(timed),
                      "time_generate": g, "time_score": s, "time_train": t, "time_iteration": g + s + t}))


if __name__ == "__main__":
    main()
