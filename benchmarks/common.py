"""Helpers shared by the benchmark scripts: models, data, interleaved timing, result tables.

Importable from both virtual environments: the course's `.venv` and the TRL-only `benchmarks/.venv-trl`,
which does not have `rlhf_course` installed. So the top level imports the standard library only; functions
that need the course import it inside.

Timing rules (the benchmark machine is shared and noisy):
- peers are measured in the same run, in interleaved rounds, alternating which goes first (A B, B A, A B, ...);
- we quote medians over repetitions and the ratio of medians.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
TRL_PYTHON = BENCH_DIR / ".venv-trl" / "bin" / "python"

# The tiny profile's model and a ~3M-parameter model for the PPO comparison (hidden, layers, heads, FFN).
TINY = dict(hidden_size=128, num_layers=4, num_heads=4, intermediate_size=512)
SMALL_3M = dict(hidden_size=192, num_layers=6, num_heads=6, intermediate_size=768)


# --------------------------------------------------------------------------------------------------
# Course-side setup (main venv only)
# --------------------------------------------------------------------------------------------------


def make_tokenizer(vocab_size: int = 1024, documents: int = 2000):
    """A BPE tokenizer trained on a small slice of the course's generated world (a few seconds)."""
    from rlhf_course.world import make_corpus, make_demonstrations
    from rlhf_course.world.tokenizer import train_tokenizer

    texts = [d["text"] for d in make_corpus(documents)]
    texts += [d["prompt"] + " " + d["response"] for d in make_demonstrations(500)]
    return train_tokenizer(texts, vocab_size)


def make_model(tokenizer, sizes: dict, max_seq_len: int = 256, seed: int = 0):
    """An untrained Llama of the given sizes in eval mode (untrained is fine for speed: lengths are controlled)."""
    from rlhf_course.config import ModelConfig
    from rlhf_course.engine.models import build_model

    config = ModelConfig(**sizes, max_seq_len=max_seq_len, vocab_size=len(tokenizer))
    return build_model(config, tokenizer, seed=seed).eval()


def save_folder(model, tokenizer, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------


def set_threads(threads: int) -> None:
    """Pin torch's intra-op threads. On a shared 2-core machine, 1 thread per process avoids the OpenMP
    oversubscription stalls (one run of 2-thread timings varied 7x between repetitions)."""
    import torch

    torch.set_num_threads(threads)


def interleave(arms: dict, repetitions: int, log=print) -> dict[str, list]:
    """Run each arm `repetitions` times in alternating rounds (A B, B A, ...); the results of each arm in a list.

    Each arm is a callable returning a dict (its measurements) for one repetition.
    """
    results: dict[str, list] = {name: [] for name in arms}
    names = list(arms)
    for rep in range(repetitions):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            result = arms[name]()
            results[name].append(result)
            log(f"  rep {rep + 1}/{repetitions} {name}: {json.dumps(result, default=_short)}")
    return results


def _short(value):
    return round(value, 4) if isinstance(value, float) else str(value)


def median(values) -> float:
    return statistics.median(values)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


# --------------------------------------------------------------------------------------------------
# A persistent worker in the TRL venv: started once, asked for one repetition at a time over stdin/stdout
# --------------------------------------------------------------------------------------------------


class Worker:
    """Runs `script --worker ARGS...` with another Python; `call(msg)` sends one JSON line, returns one JSON line."""

    def __init__(self, python: Path, script: Path, args: list[str]):
        if not Path(python).exists():
            raise SystemExit(
                f"{python} not found: create the TRL venv first (see benchmarks/README.md):\n"
                "  python -m venv benchmarks/.venv-trl && "
                "benchmarks/.venv-trl/bin/pip install -r benchmarks/requirements-trl.txt"
            )
        env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1", "TRANSFORMERS_VERBOSITY": "error"}
        self.process = subprocess.Popen(
            [str(python), str(script), "--worker", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
        )
        self.info = self._read()  # the worker announces itself (versions, threads) once ready

    def _read(self) -> dict:
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"worker exited with code {self.process.wait()}")
            if line.startswith("@@"):  # protocol lines; anything else (library chatter) is ignored
                return json.loads(line[2:])

    def call(self, message: dict) -> dict:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def worker_loop(handle) -> None:
    """The worker side: announce, then answer each JSON line on stdin with `handle(message)`."""
    import torch

    reply(environment_info(torch))
    for line in sys.stdin:
        reply(handle(json.loads(line)))


def reply(obj: dict) -> None:
    sys.stdout.write("@@" + json.dumps(obj) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------------


def environment_info(torch) -> dict:
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "torch_threads": torch.get_num_threads()}
    try:
        import trl

        info["trl"] = trl.__version__
    except ImportError:
        pass
    return info


def machine_header(title: str, extra: dict | None = None) -> str:
    """Date, machine, commit and load: the first lines of every result file."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True).stdout.strip()
        commit += " (uncommitted changes in the tree)" if dirty else ""
    except OSError:
        commit = "unknown"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"# {title}",
        "",
        f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- machine: {cpu}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}",
        f"- commit: {commit}",
        f"- load average at the end (1, 5, 15 min): {load} (a shared machine: compare within a run only)",
        f"- command: `{' '.join(['python', *sys.argv])}`",
    ]
    for key, value in (extra or {}).items():
        lines.append(f"- {key}: {value}")
    return "\n".join(lines) + "\n"


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    def cell(value):
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(name: str, text: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    path.write_text(text)
    return path
