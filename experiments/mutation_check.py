"""Do the unit tests fail when the code is wrong? A mutation check of chosen breakages.

Each breakage is one deliberate bug a student (or a refactoring) could plausibly make: a sign flipped, a term
dropped, an off-by-one. The script copies `rlhf_course/`, `tests/`, `notebooks/`, `conftest.py` and `pytest.ini` to
a temporary folder (the checkout itself is never modified), runs each named unit test file there once unbroken (a
file that fails unbroken cannot judge anything), then, one breakage at a time, edits that copy's source, runs the test files
named for it (`pytest -x -q`, `PYTHONPATH` at the copy) and puts the source back. A breakage is caught by a test
file when that file fails with it; MISSED when the file still passes.

    nice -n 10 .venv/bin/python experiments/mutation_check.py                  # every breakage (tens of minutes)
    nice -n 10 .venv/bin/python experiments/mutation_check.py --only gae dpo   # breakages whose name contains one
    nice -n 10 .venv/bin/python experiments/mutation_check.py --list           # the breakages and their targets
    ... --output benchmarks/results/mutation_check.md                          # also write the table there

A breakage whose target text is not found in the source (the code moved on) is reported as SKIPPED, so the
script says when it needs updating rather than passing silently.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Breakage:
    name: str
    what: str
    file: str  # relative to the repository root
    edits: list[tuple[str, str]]  # (text that must occur exactly once, its replacement)
    tests: list[str]  # unit test files, relative to tests/unit/


BREAKAGES = [
    Breakage("grpo-k3-dropped", "GRPO's β·k3 term dropped from the per-token loss", "rlhf_course/phases/grpo.py",
             [("per_token = per_token + kl_coef * k3_kl(ref_logprobs - logprobs)", "per_token = per_token")],
             ["test_grpo.py"]),
    Breakage("grpo-k3-sign", "GRPO's β·k3 term with its sign flipped (a KL bonus)", "rlhf_course/phases/grpo.py",
             [("per_token = per_token + kl_coef * k3_kl(ref_logprobs - logprobs)",
               "per_token = per_token - kl_coef * k3_kl(ref_logprobs - logprobs)")],
             ["test_grpo.py"]),
    Breakage("cosine-warmup-off-by-one", "cosine_lr's warm-up starts at 0 and reaches max_lr one step late "
             "(step / warmup instead of (step + 1) / warmup)", "rlhf_course/engine/training.py",
             [("return max_lr * (step + 1) / warmup_steps", "return max_lr * step / warmup_steps")],
             ["test_training.py", "test_pretrain.py"]),
    Breakage("cosine-no-floor", "cosine_lr's decay never reaches the floor (cos(π·0.9·progress): ends 2.2 % of "
             "max_lr above min_ratio·max_lr)", "rlhf_course/engine/training.py",
             [("0.5 * (1 + math.cos(math.pi * progress))", "0.5 * (1 + math.cos(math.pi * progress * 0.9))")],
             ["test_training.py", "test_pretrain.py"]),
    Breakage("win-rate-ties-dropped", "win_rate drops ties from the denominator (wins / decided prompts)",
             "rlhf_course/phases/evaluation.py",
             [("    return wins / len(scores)\n",
               "    ties = sum(abs(a - b) <= tie_margin for a, b in zip(scores, baseline_scores))\n"
               "    return (wins - 0.5 * ties) / max(1, len(scores) - ties)\n")],
             ["test_evaluation.py"]),
    Breakage("next-token-unshifted", "next_token_loss does not shift: predicts token t from tokens ≤ t",
             "rlhf_course/phases/pretrain.py",
             [("F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), input_ids[:, 1:].flatten())",
               "F.cross_entropy(logits.flatten(0, 1).float(), input_ids.flatten())")],
             ["test_pretrain.py"]),
    Breakage("dpo-no-reference", "DPO ignores the reference model (margins of the policy's log-probs alone)",
             "rlhf_course/phases/dpo.py",
             [("chosen_margin = policy_chosen_logps - reference_chosen_logps", "chosen_margin = policy_chosen_logps"),
              ("rejected_margin = policy_rejected_logps - reference_rejected_logps",
               "rejected_margin = policy_rejected_logps")],
             ["test_dpo.py"]),
    Breakage("ppo-value-unclipped", "PPO's value loss not clipped (½·mean (V − R)²)", "rlhf_course/phases/ppo.py",
             [("return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)",
               "return 0.5 * masked_mean((values - returns) ** 2, mask)")],
             ["test_ppo.py"]),
    Breakage("ppo-critic-no-gradient", "PPO's value loss has the right value but no gradient (the critic never "
             "learns)", "rlhf_course/phases/ppo.py",
             [("return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)",
               "return (0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)"
               ").detach() + 0.0 * values.sum()")],
             ["test_ppo.py"]),
    Breakage("gae-no-bootstrap", "GAE without bootstrapping: δ_t = r_t − V_t (no γ·V_{t+1})",
             "rlhf_course/phases/ppo.py",
             [("delta = rewards[:, t] + gamma * next_value - values[:, t]", "delta = rewards[:, t] - values[:, t]")],
             ["test_ppo.py"]),
    Breakage("gae-last-value-dropped", "GAE never bootstraps from the last position's value (V_{T−1} taken as 0 "
             "in δ_{T−2})", "rlhf_course/phases/ppo.py",
             [("next_value = values[:, t + 1] if t + 1 < T else torch.zeros_like(running)",
               "next_value = values[:, t + 1] if t + 2 < T else torch.zeros_like(running)")],
             ["test_ppo.py"]),
    Breakage("masked-mean-counts-padding", "masked_mean divides by every entry, padding included",
             "rlhf_course/engine/rl.py",
             [("return (values * mask).sum() / mask.sum().clamp(min=1)", "return (values * mask).sum() / mask.numel()")],
             ["test_rl.py", "test_ppo.py", "test_grpo.py"]),
    Breakage("k3-without-minus-d", "the k3 KL estimator without its −d term (e^d − 1, which can be negative)",
             "rlhf_course/engine/rl.py",
             [("return torch.expm1(log_ratio) - log_ratio", "return torch.expm1(log_ratio)")],
             ["test_rl.py", "test_grpo.py"]),
    Breakage("bradley-terry-sign", "the reward model's Bradley-Terry loss with the sign flipped "
             "(−log σ(r_rejected − r_chosen))", "rlhf_course/phases/reward.py",
             [("-F.logsigmoid(chosen_rewards - rejected_rewards).mean()",
               "-F.logsigmoid(rejected_rewards - chosen_rewards).mean()")],
             ["test_reward.py"]),
    Breakage("store-writes-twice", "the preference store writes every record twice (same id, two lines)",
             "rlhf_course/feedback/preference_store.py",
             [("lines = [record_line(record) for record in records]",
               "lines = [record_line(record) for record in records for _ in (0, 1)]")],
             ["test_preference_store.py", "test_store_records.py"]),
    Breakage("store-accepts-duplicate", "the preference store's submit no longer refuses an item already ranked "
             "(a second ranking record of the same item)", "rlhf_course/feedback/preference_store.py",
             [("if reject_duplicate and self._ranked(", "if False and self._ranked(")],
             ["test_preference_store.py", "test_store_records.py"]),
]


def copy_tree(destination: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in ("rlhf_course", "tests", "notebooks"):  # notebooks: a test runs notebook 04's own cell
        shutil.copytree(ROOT / name, destination / name, ignore=ignore)
    for name in ("conftest.py", "pytest.ini", "pyproject.toml"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, destination / name)


def environment(copy: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
            "TQDM_DISABLE": "1"}


def run_tests(copy: Path, test_file: str, timeout: float) -> tuple[str, float, str]:
    """('passed' | 'failed' | 'timeout', seconds, last line of pytest's output)."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-o", "addopts=-p no:cacheprovider",
               f"tests/unit/{test_file}"]
    began = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=copy, env=environment(copy), capture_output=True, text=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - began, f"over {timeout:.0f} s"
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    summary = lines[-1] if lines else ""
    if result.returncode == 0:
        return "passed", time.perf_counter() - began, summary
    failing = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return "failed", time.perf_counter() - began, (failing[0] if failing else summary)


def apply(copy: Path, breakage: Breakage) -> str | None:
    """Edit the copy's source; the original text (to put back), or None when a target is not found once."""
    path = copy / breakage.file
    original = path.read_text()
    text = original
    for old, new in breakage.edits:
        if text.count(old) != 1:
            return None
        text = text.replace(old, new)
    path.write_text(text)
    return original


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=None, help="breakages whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="list the breakages and exit")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per pytest run")
    parser.add_argument("--output", type=Path, default=None, help="also write the table (markdown) here")
    args = parser.parse_args(argv)
    breakages = [b for b in BREAKAGES if not args.only or any(word in b.name for word in args.only)]
    if args.list:
        for b in breakages:
            print(f"{b.name}: {b.what} ({b.file}; {', '.join(b.tests)})")
        return 0

    rows, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mutation-check-") as folder:
        copy = Path(folder)
        copy_tree(copy)
        where = subprocess.run([sys.executable, "-c", "import rlhf_course; print(rlhf_course.__file__)"], cwd=copy,
                               env=environment(copy), capture_output=True, text=True).stdout.strip()
        if not where.startswith(str(copy)):
            raise SystemExit(f"the copy's package is not the one imported ({where}): nothing would be tested")
        baseline = {}
        for test_file in sorted({t for b in breakages for t in b.tests}):
            baseline[test_file] = run_tests(copy, test_file, args.timeout)
            print(f"unbroken: {test_file}: {baseline[test_file][0]} in {baseline[test_file][1]:.0f} s", flush=True)
        for b in breakages:
            original = apply(copy, b)
            if original is None:
                rows.append((b, "—", "SKIPPED (target text not found)", ""))
                print(f"{b.name}: SKIPPED, target not found in {b.file}", flush=True)
                continue
            try:
                for test_file in b.tests:
                    if baseline[test_file][0] != "passed":
                        rows.append((b, test_file, f"— (fails unbroken: {baseline[test_file][2]})", ""))
                        continue
                    outcome, seconds, detail = run_tests(copy, test_file, args.timeout)
                    verdict = {"failed": "caught", "passed": "MISSED", "timeout": "timeout"}[outcome]
                    rows.append((b, test_file, verdict, detail))
                    print(f"{b.name} | {test_file} | {verdict} ({seconds:.0f} s) {detail}", flush=True)
            finally:
                (copy / b.file).write_text(original)

    table = ["| breakage | where | test file | caught (failed) or MISSED | first failure |", "|---|---|---|---|---|"]
    for b, test_file, verdict, detail in rows:
        table.append(f"| `{b.name}`: {b.what} | `{b.file.removeprefix('rlhf_course/')}` | `{test_file}` | "
                     f"{'**MISSED**' if verdict == 'MISSED' else verdict} | {detail.replace('|', '/')} |")
    text = "\n".join(table)
    print("\n" + text)
    print(f"\n{len(rows)} rows in {(time.perf_counter() - started) / 60:.1f} min; MISSED: "
          + (", ".join(f"{b.name} ({t})" for b, t, v, _ in rows if v == "MISSED") or "none"))
    if args.output:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "rlhf_course", "tests"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        header = ["# Mutation check: do the unit tests fail on wrong code?", "",
                  f"- date: {datetime.datetime.now():%Y-%m-%d %H:%M}",
                  f"- commit: {commit}" + (" (uncommitted changes in rlhf_course/ or tests/)" if dirty else ""),
                  f"- command: `python experiments/mutation_check.py{' --only ' + ' '.join(args.only) if args.only else ''}`"
                  " (each breakage applied alone to a temporary copy; `pytest -x -q` per test file)",
                  "- caught: the test file failed with the breakage; **MISSED**: it still passed", "", ""]
        args.output.write_text("\n".join(header) + text + "\n")
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
