"""The robustness sweep: does every lesson of the course hold on another random stream?

Another CPU sums floats in another order, so from the first pretraining steps its run of the course follows
another random stream, as another seed does. This script runs the whole course (`python -m rlhf_course run`,
profile `tiny` by default, always with `--keep-going` so a run continues past a failed notebook) once per seed
(`--seeds`, default 0-4), and seed 0 once more under every other kernel family this CPU offers
(`ATEN_CPU_CAPABILITY=default` always; `avx2` / `avx512` where the CPU has them and they are not torch's choice
here). Each run has its own folder under `runs/robustness/` (`--out`). It then writes a table (default
`benchmarks/results/robustness_<profile>.md`): one row per quantity a notebook checks (`report.check`, judged by
the threshold the notebooks have now, read from their cells), one per headline number of `report.json`, each with
its minimum, median and maximum over the runs, each run's minutes, and which runs failed which notebook. The
notebooks' thresholds are set from this table: each sits below the worst of its runs, with a margin.

    python experiments/robustness.py                      # every run, one at a time
    python experiments/robustness.py --jobs 2             # two at a time, one thread each
    python experiments/robustness.py --table-only         # rebuild the table from the runs already there
    python experiments/robustness.py --jobs 2 --from 03   # after a change to notebook 03 or later: rerun from 03

By default that is the five seeds and one run per other kernel family: on an x86 Linux machine six runs where the
CPU has AVX2 but no AVX-512 (seed0-default), seven where it has AVX-512 (seed 0 under the two of `default`, `avx2`
and `avx512` that torch did not choose); `--no-capabilities` runs the seeds alone. `--from NN` reruns each of
those runs in `--out` from notebook NN to the course's last (`run --from NN`), on its own earlier checkpoints.

How long: one run is the whole course. At one thread each on 2 shared cores a run took 65-94 minutes
(`robustness_tiny.md`, AVX2), 19-31 minutes on an AVX-512 machine (`robustness_tiny_avx512.md`); with `--jobs 2`
the runs go two at a time, so the sweep takes three or four times one run: about 95 minutes for the five runs
on the AVX-512 machine, over four hours for six on the AVX2 one.

Not part of CI. Each run gets cores / jobs threads. On some CPUs the thread count changes the stream too (seen on
an AVX-512 machine: seed 0 at one and at two threads gave different base models), so a run at another thread
count, such as CI's, is one more stream: add its report with `--extra LABEL=REPORT` (and a line for the table's
header with `--note`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Headline numbers of report.json that no check covers: (name, path into report["phases"]) or a callable.
HEADLINES = {
    "base gold": ("base", "gold_mean"),
    "SFT gold": ("sft", "gold_mean"),
    "reward model held-out accuracy": ("reward", "heldout_accuracy"),
    "reward model mood probe": ("reward", "probes", "mood"),
    "PPO gold": ("ppo", "gold_mean"),
    "PPO gold − SFT gold": lambda p: p["ppo"]["gold_mean"] - p["ppo"]["sft_gold_mean"],
    "PPO win rate vs SFT": ("ppo", "win_rate_vs_sft"),
    "PPO gold at T 0.7": ("ppo", "gold_mean_t0.7"),
    "PPO gold − SFT gold at T 0.7": lambda p: p["ppo"]["gold_mean_t0.7"] - p["ppo"]["sft_gold_mean_t0.7"],
    "PPO KL to SFT": ("ppo", "kl"),
    "SFT gold at T 0.7": ("ppo", "sft_gold_mean_t0.7"),
    "PPO length gain against the length-biased RM (tokens)": ("evaluation", "length_bias_tokens"),
    "PPO happy share gain against the happy-biased RM": ("evaluation", "happy_bias_share"),
    "DPO gold": ("dpo", "gold_mean"),
    "DPO gold − SFT gold": lambda p: p["dpo"]["gold_mean"] - p["dpo"]["sft_gold_mean"],
    "DPO win rate vs SFT": ("dpo", "win_rate_vs_sft"),
    "DPO KL to SFT": ("dpo", "kl"),
    "best-of-n gold peak − gold at largest n": lambda p: (p["evaluation"]["overoptimisation"]["peak_gold"]
                                                         - p["evaluation"]["overoptimisation"]["last_gold"]),
    "best-of-n n at gold's peak (weak proxy)": ("evaluation", "overoptimisation", "peak_n"),
    "best-of-16 gold (notebook 03's reward model)": lambda p: next(
        x["gold"] for x in p["evaluation"]["best_of_n"] if x["n"] == 16),
    "GRPO gold (reward model)": ("grpo", "gold_mean"),
    "GRPO gold − SFT gold": lambda p: p["grpo"]["gold_mean"] - p["grpo"]["sft_gold_mean"],
    "GRPO gold − PPO gold": lambda p: p["grpo"]["gold_mean"] - p["ppo"]["gold_mean"],  # notebook 04's PPO
    "GRPO gold with the verifier": ("grpo", "verifier", "gold_mean"),
    "GRPO gold with the verifier and the reward model": ("grpo", "both", "gold_mean"),
}


CHECK_CALL = re.compile(r'report\.check\(profile\.name,\s*"([^"]+)",[^=]*?(at_least|at_most)=([-\d.]+)')


def notebook_thresholds() -> dict[str, tuple[str, float]]:
    """Every `report.check` in the course's notebooks as they are now: name → (at_least | at_most, threshold).
    The table judges every run by these, so it can be rebuilt after a threshold moved."""
    import nbformat

    found = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for name, side, value in CHECK_CALL.findall(cell.source):
                found[name] = (side, float(value))
    return found


def passes(value, side: str, threshold: float) -> bool:
    return value >= threshold if side == "at_least" else value <= threshold


def cpu_capabilities() -> tuple[str, list[str]]:
    """torch's kernel family on this CPU, and the others this CPU can run (values of ATEN_CPU_CAPABILITY)."""
    import torch

    current = torch.backends.cpu.get_cpu_capability().lower()  # e.g. "avx2", "avx512", "default"
    flags = set()
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    offered = ["default"] + [c for c, flag in (("avx2", "avx2"), ("avx512", "avx512f")) if flag in flags]
    return current, [c for c in offered if c != current]


def planned_runs(seeds: list[int], capabilities: list[str]) -> list[dict]:
    runs = [{"label": f"seed{seed}", "seed": seed, "capability": None} for seed in seeds]
    runs += [{"label": f"seed0-{cap}", "seed": 0, "capability": cap} for cap in capabilities]
    return runs


def run_folder(out: Path, run: dict) -> Path:
    return out / run["label"]


def execute(run: dict, profile: str, out: Path, threads: int, start: str | None = None) -> dict:
    """One headless run of the whole course (from notebook `start` on, if given), in its own folder; returns its
    wall time and exit status."""
    folder = run_folder(out, run)
    folder.mkdir(parents=True, exist_ok=True)
    # PYTHONPATH: the runs (and their kernels) import this checkout's package, whatever is installed
    env = {**os.environ, "RLHF_RUNS_DIR": str(folder), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    env.pop("RLHF_SEED", None)
    if run["capability"]:
        env["ATEN_CPU_CAPABILITY"] = run["capability"]
    command = [sys.executable, "-m", "rlhf_course", "run", "--profile", profile, "--seed", str(run["seed"]),
               "--keep-going"] + (["--from", start] if start else [])
    began = time.perf_counter()
    with open(folder / "run.log", "w") as log:
        status = subprocess.call(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - began
    (folder / "sweep.json").write_text(json.dumps({**run, "exit_status": status, "wall_s": round(wall, 1),
                                                   "from": start}))
    print(f"{run['label']}: exit {status} in {wall / 60:.1f} min", flush=True)
    return {"exit_status": status, "wall_s": wall}


def run_report(out: Path, run: dict, profile: str) -> dict:
    folder = run_folder(out, run)
    name = profile + (f"-seed{run['seed']}" if run["seed"] else "")
    path = folder / name / "report.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    meta_path = folder / "sweep.json"
    report["sweep"] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    report["failed"] = failed_notebooks(folder / name / "executed")
    return report


def failed_notebooks(executed: Path) -> dict[str, str]:
    """Notebook → its first error (`ename: evalue`, shortened), from the executed copies."""
    import nbformat

    failed = {}
    for path in sorted(executed.glob("*.ipynb")) if executed.exists() else []:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if errors:
                failed[path.stem[:2]] = f"{errors[0]['ename']}: {errors[0]['evalue']}"[:160]
                break
    return failed


def lookup(phases: dict, where):
    try:
        if callable(where):
            return float(where(phases))
        value = phases
        for key in where:
            value = value[key]
        return float(value)
    except (KeyError, TypeError, ValueError):
        return None


def fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"


def table(reports: dict[str, dict], profile: str, capability: str, notes: list[str] = ()) -> str:
    labels = list(reports)
    lines = [f"# Robustness sweep, profile `{profile}`", "",
             f"{datetime.date.today()} · {platform.processor() or platform.machine()} · "
             f"torch's kernels here: `{capability}` · {os.cpu_count()} cores · "
             f"`python experiments/robustness.py` (runs: {', '.join(labels)})", "",
             "Each run is the whole course from scratch; `seedN` is `--seed N`, `seed0-X` is seed 0 with "
             "`ATEN_CPU_CAPABILITY=X` (another CPU's kernels, so another random stream); each run had cores / "
             "`--jobs` threads. A column marked * is another run's report added with `--extra`. Thresholds are the "
             "notebooks' as they are now; ✗ marks a run outside one. `—`: the run did not get that far.", "",
             *[f"Note: {note}" for note in notes], *([""] if notes else [])]
    header = "| quantity | threshold | min | median | max | " + " | ".join(labels) + " |"
    lines += ["## Checked quantities (`report.check` in the notebooks)", "", header,
              "|" + "---|" * (5 + len(labels))]
    thresholds = notebook_thresholds()
    names = sorted({name for r in reports.values() for name in r.get("checks", {})} | set(thresholds))
    for name in names:
        values = [reports[label].get("checks", {}).get(name, {}).get("value") for label in labels]
        if name in thresholds:
            side, threshold = thresholds[name]
            bound = f"{'≥' if side == 'at_least' else '≤'} {threshold:g}"
            cells = [fmt(v) + ("" if v is None or passes(v, side, threshold) else " ✗") for v in values]
        else:  # a check the notebooks no longer make (recorded by an older version of a notebook)
            continue
        lines.append(f"| `{name}` | {bound} | " + summary_cells(values) + " | " + " | ".join(cells) + " |")
    lines += ["", "## Headline numbers of report.json", "", header.replace("threshold", "—"),
              "|" + "---|" * (5 + len(labels))]
    for name, where in HEADLINES.items():
        values = [lookup(reports[label].get("phases", {}), where) for label in labels]
        lines.append(f"| {name} | | " + summary_cells(values) + " | " + " | ".join(fmt(v) for v in values) + " |")
    # each notebook's latest execution (`report.json`'s notebooks), so a run resumed with --from still sums to a course
    walls = [sum(n["wall_s"] for n in reports[label].get("notebooks", {}).values()) or None for label in labels]
    lines.append("| whole course, minutes | | " + summary_cells([w / 60 if w else None for w in walls]) + " | "
                 + " | ".join(fmt(w / 60 if w else None) for w in walls) + " |")
    lines += ["", "## Failures (errors in the executed notebooks, judged by the thresholds of that run)", ""]
    failures = [(label, nb, error) for label in labels for nb, error in reports[label]["failed"].items()]
    lines += [f"- `{label}`, notebook {nb}: {error}" for label, nb, error in failures] or ["None: every run passed "
                                                                                           "every notebook."]
    return "\n".join(lines) + "\n"


def summary_cells(values: list) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "— | — | —"
    return f"{fmt(min(present))} | {fmt(statistics.median(present))} | {fmt(max(present))}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--no-capabilities", action="store_true", help="only the seeds, on this CPU's own kernels")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (each gets cores / jobs threads)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "robustness")
    parser.add_argument("--table", type=Path, help="default: benchmarks/results/robustness_<profile>.md")
    parser.add_argument("--table-only", action="store_true", help="rebuild the table from the runs in --out")
    parser.add_argument("--extra", action="append", default=[], metavar="LABEL=REPORT",
                        help="add another run's report.json as a column (e.g. a CI run at another thread count)")
    parser.add_argument("--note", action="append", default=[], help="a line for the table's header")
    parser.add_argument("--from", dest="start", metavar="NN",
                        help="rerun each run in --out from notebook NN on, on its own earlier checkpoints (after a "
                             "change to notebook NN or later, the earlier phases need not run again)")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()  # the runs start in the checkout's root, the table is read from here
    capability, others = cpu_capabilities()
    runs = planned_runs(args.seeds, [] if args.no_capabilities else others)
    if not args.table_only:
        threads = max(1, (os.cpu_count() or 1) // args.jobs)
        print(f"{len(runs)} runs of the {args.profile} course, {args.jobs} at a time with {threads} thread(s) each; "
              f"torch's kernels here: {capability}; folders under {args.out}", flush=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda run: execute(run, args.profile, args.out, threads, args.start), runs))
    reports = {run["label"]: run_report(args.out, run, args.profile) for run in runs
               if run_folder(args.out, run).exists()}
    for extra in args.extra:
        label, _, path = extra.partition("=")
        reports[label] = {**json.loads(Path(path).read_text()), "sweep": {}, "failed": {}}
    text = table(reports, args.profile, capability, args.note)
    path = args.table or ROOT / "benchmarks" / "results" / f"robustness_{args.profile}.md"
    path.write_text(text)
    print(text)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
