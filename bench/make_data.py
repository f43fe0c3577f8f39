"""Benchmark data from the demo world's pretraining corpus (rlhf world generate): long SFT examples,
preference pairs and RL prompts, so that every training row is cut to exactly --seq tokens on both
sides of a benchmark (same shapes, no padding) and the comparison measures compute, not data.

  python bench/make_data.py --world DIR --out DIR --seq 256 [--examples 64]
Writes text.txt (tokenizer training), sft.jsonl, pairs.jsonl, prompts.jsonl into --out.
"""
import argparse, json, os, random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--examples", type=int, default=64)
    a = ap.parse_args()
    with open(os.path.join(a.world, "pretrain.jsonl")) as f:
        docs = [json.loads(line)["text"] for line in f if line.strip()]
    rng = random.Random(0)
    os.makedirs(a.out, exist_ok=True)

    def long_text(chars):
        # Whole documents until the text is long enough; a byte-level BPE token is at most a few
        # characters of this corpus, so 8 characters per token always overflows --seq.
        out = []
        while sum(len(d) + 1 for d in out) < chars:
            out.append(rng.choice(docs))
        return "\n".join(out)

    def write(name, rows):
        with open(os.path.join(a.out, name), "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

    with open(os.path.join(a.out, "text.txt"), "w") as f:
        f.write("\n".join(docs) + "\n")
    n, chars = a.examples, 8 * a.seq
    write("sft.jsonl", [{"prompt": long_text(200), "completion": long_text(chars)} for _ in range(n)])
    write("pairs.jsonl", [{"prompt": long_text(200), "chosen": long_text(chars), "rejected": long_text(chars)}
                          for _ in range(n)])
    with open(os.path.join(a.world, "prompts.jsonl")) as f:
        prompts = [json.loads(line)["prompt"] for line in f if line.strip()]
    write("prompts.jsonl", [{"prompt": p} for p in prompts[:max(n, 64)]])


if __name__ == "__main__":
    main()
