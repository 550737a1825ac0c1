"""Sampling speed: `rlhf_course.engine.generation.sample` vs `model.generate` on the same model, prompts and settings.

Both sample plainly from softmax(logits / T) with T = 1 (generate: do_sample=True, top_k=0, top_p=1.0), up to
N new tokens, from the same left-padded chat prompts, on one untrained tiny-profile Llama (~1.2M parameters).
An untrained model almost never says EOS, so the answer lengths are set by a forward hook on `lm_head`, which
both samplers go through identically:

  (a) fixed:     the EOS logit is -inf, so every answer runs exactly N tokens (no early-exit advantage);
  (b) realistic: the EOS logit is set so that P(EOS) = p at every step (p = 1/32 by default), so answers end
                 at varied, geometric lengths capped at N. `generate` keeps the whole batch running until
                 every row has ended (finished rows are fed pad tokens); `sample` drops finished rows.

With `--checkpoint DIR` (a course checkpoint folder, e.g. runs/tiny/checkpoints/sft) a third scenario samples
that trained model with no hook: its own answer lengths.

tokens/s counts answer tokens (up to and including EOS) per second of wall time, the same for both.

    nice -n 10 .venv/bin/python benchmarks/bench_sampler.py [--repetitions 7] [--batch-sizes 32 64 128]
        [--checkpoint runs/tiny/checkpoints/sft] [--device cuda]
"""

from __future__ import annotations

import argparse
import math

import common
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from rlhf_course.engine.generation import encode_prompts, sample
from rlhf_course.world import make_prompts


def fixed_length_hook(eos_token_id: int):
    """(a) EOS can never be sampled: every answer is exactly max_new_tokens long."""
    def hook(module, inputs, logits):
        logits[..., eos_token_id] = -math.inf
        return logits
    return hook


def constant_hazard_hook(eos_token_id: int, p: float):
    """(b) P(EOS) = p at every step, whatever the model says; the other tokens keep their relative odds."""
    def hook(module, inputs, logits):
        others = logits.clone()
        others[..., eos_token_id] = -math.inf
        logits[..., eos_token_id] = torch.logsumexp(others, dim=-1) + math.log(p / (1 - p))
        return logits
    return hook


def answer_lengths(response_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """Tokens up to and including the first EOS in each row (all of them when there is none): (B,)."""
    is_eos = (response_ids == eos_token_id).long()
    after_eos = (is_eos.cumsum(1) - is_eos) > 0
    return (~after_eos).sum(1)


def timed_sync(fn, *args, **kwargs):
    """`common.timed`, waiting for queued GPU work before the clock stops."""
    def call():
        out = fn(*args, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return out
    return common.timed(call)


def run_ours(model, ids, mask, new_tokens, tokenizer, seed):
    generator = torch.Generator(device=model.device).manual_seed(seed)
    rollout, seconds = timed_sync(sample, model, ids, mask, new_tokens, 1.0, tokenizer.eos_token_id,
                                  tokenizer.pad_token_id, generator)
    tokens = int(rollout.lengths.sum())
    return {"s": seconds, "tokens": tokens, "steps": int(rollout.lengths.max()), "tok_per_s": tokens / seconds}


def run_generate(model, ids, mask, new_tokens, tokenizer, seed):
    config = GenerationConfig(do_sample=True, top_k=0, top_p=1.0, temperature=1.0, max_new_tokens=new_tokens,
                              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    with torch.no_grad():
        out, seconds = timed_sync(model.generate, input_ids=ids.masked_fill(mask == 0, 0), attention_mask=mask,
                                  generation_config=config)
    response = out[:, ids.shape[1]:]
    tokens = int(answer_lengths(response, tokenizer.eos_token_id).sum())
    return {"s": seconds, "tokens": tokens, "steps": response.shape[1], "tok_per_s": tokens / seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--eos-probability", type=float, default=1 / 32, help="scenario (b)'s per-step P(EOS)")
    parser.add_argument("--scenarios", nargs="+", default=["fixed", "realistic"], choices=["fixed", "realistic"])
    parser.add_argument("--checkpoint", help="also time this trained model folder with its own EOS (scenario c)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: see common)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (fp32 either way)")
    parser.add_argument("--output", default="sampler.md", help="file name under benchmarks/results/ ('' = none)")
    args = parser.parse_args()
    common.set_threads(args.threads)

    tokenizer = common.make_tokenizer()
    model = common.make_model(tokenizer, common.TINY).to(args.device)
    models = {}
    for scenario in args.scenarios:
        models[scenario] = model
    if args.checkpoint:
        trained = AutoModelForCausalLM.from_pretrained(args.checkpoint, use_safetensors=True).to(args.device).eval()
        models["checkpoint"] = trained
        checkpoint_tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    hooks = {"fixed": fixed_length_hook(tokenizer.eos_token_id),
             "realistic": constant_hazard_hook(tokenizer.eos_token_id, args.eos_probability)}
    prompts = make_prompts(max(args.batch_sizes), "train", seed=0)
    print(f"tiny policy: {common.count_parameters(model):,} parameters; torch threads {torch.get_num_threads()}")

    rows = []
    for scenario, scenario_model in models.items():
        tok = checkpoint_tokenizer if scenario == "checkpoint" else tokenizer
        handle = scenario_model.lm_head.register_forward_hook(hooks[scenario]) if scenario in hooks else None
        for batch in args.batch_sizes:
            ids, mask = (x.to(args.device) for x in encode_prompts(tok, prompts[:batch]))
            arms = {
                "sample": lambda: run_ours(scenario_model, ids, mask, args.new_tokens, tok, seed=0),
                "generate": lambda: run_generate(scenario_model, ids, mask, args.new_tokens, tok, seed=0),
            }
            for arm in arms.values():  # warm-up, untimed
                arm()
            print(f"[{scenario}] batch {batch}, prompt length {ids.shape[1]}, N = {args.new_tokens}")
            results = common.interleave(arms, args.repetitions)
            ours = common.median([r["tok_per_s"] for r in results["sample"]])
            theirs = common.median([r["tok_per_s"] for r in results["generate"]])
            rows.append([
                scenario, batch,
                round(common.median([r["tokens"] for r in results["sample"]]) / batch, 1),
                round(common.median([r["steps"] for r in results["generate"]]), 1),
                round(ours), round(theirs), f"{ours / theirs:.2f}x",
                round(common.median([r["s"] for r in results["sample"]]), 3),
                round(common.median([r["s"] for r in results["generate"]]), 3),
            ])
        if handle:
            handle.remove()

    headers = ["scenario", "batch", "mean answer tokens", "generate steps", "sample tok/s", "generate tok/s",
               "ratio", "sample s", "generate s"]
    text = common.table(headers, rows)
    print(text)
    if args.output:
        header = common.machine_header("Sampler: rlhf_course.engine.generation.sample vs model.generate", {
            "model": f"untrained tiny-profile Llama, {common.count_parameters(model):,} parameters, fp32, "
                     f"{args.device}",
            "settings": f"N = {args.new_tokens} new tokens, T = 1.0, top_k = 0, top_p = 1.0, "
                        f"{args.repetitions} interleaved repetitions per arm, medians",
            "scenarios": "fixed = EOS logit -inf (every answer N tokens); realistic = P(EOS) = "
                         f"{args.eos_probability:.4g} per step (geometric lengths capped at N)"
                         + (f"; checkpoint = {args.checkpoint}, no hook" if args.checkpoint else ""),
            "environment": common.environment_info(torch),
        })
        path = common.write_result(args.output, header + "\n" + text + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
