"""The course's command line.

    python -m rlhf_course run [--profile P] [--seed N] [--from NN] [--until NN]   execute the notebooks headless
                              [--timeout S] [--keep-going] [--notebooks DIR]
    python -m rlhf_course report [--profile P] [--seed N]  print runs/<profile>/report.json
    python -m rlhf_course clean [--profile P] [--seed N]   delete runs/<profile> (checkpoints, outputs)
    python -m rlhf_course prefs check PATH...              validate preference files (JSONL)
    python -m rlhf_course exercises [--out DIR]            write the student edition (solutions stubbed)
    python -m rlhf_course train PHASE [--profile P] [--seed N]   train pretrain/sft/reward/dpo outside a notebook;
                              under `torchrun --nproc_per_node N -m rlhf_course train PHASE`, in N processes
    python -m rlhf_course distributed-check                check that 2 processes train as one (exit 1 if not)

Bad input (an unknown profile or notebook, a missing checkpoint) gets one line of explanation and a
non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

# ---- `prefs`: preference files are text, so these commands run before the imports below load torch (seconds) ----


def add_prefs_commands(prefs: argparse.ArgumentParser) -> None:
    """The `prefs` subcommands, added to `prefs` (the whole command line's parser, or the fast path's below)."""
    prefs_commands = prefs.add_subparsers(dest="prefs_command", required=True)
    check = prefs_commands.add_parser("check", help="validate preference JSONL files, line by line")
    check.add_argument("paths", nargs="+", type=Path)
    check.set_defaults(func=command_prefs_check)


def command_prefs_check(args) -> int:
    from rlhf_course.feedback.preference_loading import check_preference_files

    if hasattr(sys.stdout, "reconfigure"):  # a console that cannot show a name's letters shows \u escapes instead
        sys.stdout.reconfigure(errors="backslashreplace")
    return check_preference_files(args.paths)


if __name__ == "__main__" and sys.argv[1:2] == ["prefs"]:  # `python -m rlhf_course prefs …`: answered here
    _prefs_parser = argparse.ArgumentParser(prog="python -m rlhf_course prefs", description="preference files")
    add_prefs_commands(_prefs_parser)
    _prefs_args = _prefs_parser.parse_args(sys.argv[2:])
    sys.exit(_prefs_args.func(_prefs_args))

from rlhf_course.config import PROFILES, ProfileError, base_model_source, get_profile
from rlhf_course.course.report import read_report, record_run
from rlhf_course.engine.models import CheckpointError
from rlhf_course.paths import repo_root, runs_dir

NOTEBOOK_DIR = repo_root() / "notebooks"


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def list_notebooks(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    return sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))


def select_notebooks(start: str | None = None, until: str | None = None, folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The notebooks of `folder` from number `start` to number `until` (both included, both optional)."""
    notebooks = list_notebooks(folder)
    if not notebooks:
        raise UsageError(f"no notebooks (NN_*.ipynb) in {folder}")
    numbers = [nb.name[:2] for nb in notebooks]

    def index(flag: str, number: str) -> int:
        key = number.zfill(2)
        if key not in numbers:
            raise UsageError(f"{flag} {number}: no notebook with that number; the course has {', '.join(numbers)}")
        return numbers.index(key)

    first = index("--from", start) if start is not None else 0
    last = index("--until", until) if until is not None else len(notebooks) - 1
    if first > last:
        raise UsageError(f"--from {start} comes after --until {until}")
    return notebooks[first : last + 1]


# Run after a notebook's last cell, in its kernel, and left out of the executed copy: whether the notebook fits a
# smaller GPU (Colab's T4: 15 GB) is its peak memory, which only its own kernel can tell.
PEAK_GPU_MEMORY_PROBE = """\
import json as _json, sys as _sys
_torch = _sys.modules.get("torch")
_cuda = _torch is not None and _torch.cuda.is_available()
print(_json.dumps({"peak_gpu_bytes": _torch.cuda.max_memory_allocated() if _cuda else None}))"""


class NotebookRun(NamedTuple):
    wall_s: float
    peak_gpu_gib: float | None  # torch.cuda.max_memory_allocated() at the end; None without CUDA


def peak_gpu_gib(probe_outputs: list) -> float | None:
    """The probe cell's answer in GiB (None when it printed none or there was no GPU)."""
    text = "".join(o.get("text", "") for o in probe_outputs if o.get("output_type") == "stream")
    try:
        peak = json.loads(text.strip().splitlines()[-1])["peak_gpu_bytes"]
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    return None if peak is None else round(peak / 2**30, 2)


def execute_notebook(path: Path, out_path: Path, timeout: int, keep_going: bool = False) -> NotebookRun:
    """Run one notebook in a fresh kernel, save the executed copy; return its wall time and peak GPU memory.

    With `keep_going`, cells after a failing one still run; the failure is raised at the end.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from tqdm.auto import tqdm
    from traitlets.config import Config

    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    probe = nbformat.v4.new_code_cell(PEAK_GPU_MEMORY_PROBE)
    nb.cells.append(probe)
    bar = tqdm(total=len(code_cells), desc=path.stem, unit="cell")
    sockets = tempfile.mkdtemp(prefix="rlhf-kernel-")
    client = NotebookClient(
        nb,
        config=Config({"KernelManager": kernel_connection(sockets)}),
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},  # the kernel's cwd, as in JupyterLab
        store_widget_state=True,
        allow_errors=keep_going,
        on_cell_complete=lambda cell, cell_index: bar.update(int(cell_index < len(nb.cells) - 1)),
    )
    start = time.perf_counter()
    try:
        try:
            client.execute()
        finally:
            nb.cells.remove(probe)  # the executed copy is the notebook as the course wrote it
        if keep_going and any(_has_error(c) for c in code_cells):
            first = next(c for c in code_cells if _has_error(c))
            error = next(o for o in first.outputs if o.get("output_type") == "error")
            raise CellExecutionError("", error.get("ename", "Error"), error.get("evalue", ""))
    except CellExecutionError as error:
        bar.close()
        out_path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_path)
        failed = next((i for i, c in enumerate(code_cells) if _has_error(c)), None)
        where = f"code cell {failed + 1} of {len(code_cells)}" if failed is not None else "a cell"
        summary = f"{error.ename}: {error.evalue}" if getattr(error, "ename", None) else str(error)[-500:]
        if getattr(error, "ename", None) == "ExerciseNotDone":  # the student edition stops at its first stub
            summary += (f"\n→ write it in {path} (the cell before the check), then carry on with "
                        f"`python -m rlhf_course run --notebooks {path.parent} --from {path.name[:2]}`")
        raise RuntimeError(f"{path.name} failed in {where}: {summary}\n(executed copy: {out_path})") from None
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    bar.close()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_path)
    return NotebookRun(time.perf_counter() - start, peak_gpu_gib(probe.outputs))


def has_unix_sockets() -> bool:
    import socket

    return hasattr(socket, "AF_UNIX") and os.name != "nt"


def kernel_connection(sockets: str) -> dict:
    """How the runner talks to its kernels: `KernelManager` settings.

    Over Unix sockets in the folder `sockets` where the OS has them: nothing leaves the machine, nothing to
    encrypt. Windows has none, so there the kernel listens on TCP at 127.0.0.1, encrypted with CurveZMQ keys
    that jupyter_client makes for each kernel (without them ipykernel warns that the kernel's traffic is plain
    text, which a student reads as a problem).
    """
    if has_unix_sockets():
        return {"transport": "ipc", "ip": os.path.join(sockets, "kernel")}
    import zmq

    return {"transport": "tcp", "ip": "127.0.0.1", "transport_encryption": "auto" if zmq.has("curve") else "disabled"}


def _has_error(cell) -> bool:
    return any(o.get("output_type") == "error" for o in cell.get("outputs", []))


def settings_outside_a_read_only_home() -> None:
    """A read-only home folder (some lab machines): the kernels' IPython and matplotlib keep their settings and
    caches in a temporary folder instead, said once here rather than warned by every kernel."""
    home = Path.home()
    if os.access(home, os.W_OK) or (os.environ.get("IPYTHONDIR") and os.environ.get("MPLCONFIGDIR")):
        return
    scratch = tempfile.mkdtemp(prefix="rlhf-settings-")
    os.environ.setdefault("IPYTHONDIR", os.path.join(scratch, "ipython"))
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(scratch, "matplotlib"))
    print(f"{home} is read-only: the kernels keep IPython's and matplotlib's settings in {scratch} for this run")


def use_seed(args) -> None:
    """`--seed N` sets `RLHF_SEED` for this process and the kernels it starts (checked: a whole number)."""
    if getattr(args, "seed", None) is not None:
        if args.seed < 0:
            raise UsageError(f"--seed {args.seed}: the seed must be a whole number ≥ 0")
        os.environ["RLHF_SEED"] = str(args.seed)


def command_run(args) -> int:
    use_seed(args)
    profile = get_profile(args.profile)
    notebooks = select_notebooks(args.start, args.until, args.notebooks)
    if base_model_source() and any(nb.name.startswith("01_") for nb in notebooks):
        # another base model replaces notebook 01's: pretraining one here would overwrite it
        notebooks = [nb for nb in notebooks if not nb.name.startswith("01_")]
        print(f"RLHF_BASE_MODEL={base_model_source()}: notebook 01 is skipped, the course starts from that model.")
    os.environ["RLHF_PROFILE"] = profile.name  # the kernels inherit it
    if os.environ.get("RLHF_RUNS_DIR"):
        # the kernels start in notebooks/, not here: a relative folder would put their checkpoints elsewhere
        os.environ["RLHF_RUNS_DIR"] = str(Path(os.environ["RLHF_RUNS_DIR"]).resolve())
    os.environ["RLHF_HEADLESS"] = "1"  # nobody is at the widgets: notebooks drive them by code
    settings_outside_a_read_only_home()
    if not (base_model_source() and not Path(base_model_source()).is_dir()):  # a Hub id is meant to be downloaded
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    executed = runs_dir(profile.name) / "executed"
    print(f"Running {len(notebooks)} notebook(s) with profile '{profile.name}' ({profile.description}), "
          f"seed {profile.seed}.")
    total = time.perf_counter()
    failures: list[str] = []
    for i, nb in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {nb.name}", flush=True)
        try:
            wall, peak_gib = execute_notebook(nb, executed / nb.name, args.timeout, args.keep_going)
        except RuntimeError as error:
            if not args.keep_going:
                raise
            failures.append(str(error))
            print(f"    FAILED: {error}", flush=True)
            continue
        record_run(profile.name, nb.stem, round(wall, 1), peak_gib)
        print(f"    done in {wall:.0f} s" + (f", peak GPU memory {peak_gib} GiB" if peak_gib is not None else ""),
              flush=True)
    print(f"All done in {time.perf_counter() - total:.0f} s. Executed notebooks: {executed}")
    print(f"Report: {runs_dir(profile.name) / 'report.json'}")
    if failures:
        print(f"{len(failures)} notebook(s) failed:\n" + "\n".join(failures), file=sys.stderr)
        return 1
    return 0


def command_report(args) -> int:
    use_seed(args)
    print(json.dumps(read_report(get_profile(args.profile).name), indent=2))
    return 0


def command_clean(args) -> int:
    use_seed(args)
    folder = runs_dir(get_profile(args.profile).name)
    if folder.exists():
        shutil.rmtree(folder)
        print(f"Removed {folder}")
    else:
        print(f"Nothing to remove at {folder}")
    return 0


def command_exercises(args) -> int:
    import nbformat

    from rlhf_course.course.exercises import EXERCISES, exercises_in, student_edition

    sources = list_notebooks()
    for source, path in zip(sources, student_edition(sources, args.out)):
        ids = [i for cell in nbformat.read(source, as_version=4).cells for i in exercises_in(cell.source)]
        left = [i for cell in nbformat.read(path, as_version=4).cells for i in exercises_in(cell.source)]
        if left:
            raise RuntimeError(f"{path}: solutions left in the student edition: {left}")
        print(f"{path}: " + (f"exercises {', '.join(ids)}" if ids else "no exercises"))
    print(f"The student edition of the course's {len(EXERCISES)} exercises is in {args.out}. Open it in JupyterLab, "
          f"or run it: python -m rlhf_course run --notebooks {args.out}")
    return 0


def command_train(args) -> int:
    from rlhf_course.course import launch

    use_seed(args)
    try:
        launch.train(args.phase, get_profile(args.profile))
    except launch.LaunchError as error:
        raise UsageError(str(error)) from None
    return 0


def command_distributed_check(args) -> int:
    from rlhf_course.course import distributed_check

    unknown = [phase for phase in args.phases if phase not in distributed_check.PHASES]
    if unknown:
        raise UsageError(f"no phase {unknown[0]!r} to check; the phases are "
                         f"{', '.join(distributed_check.PHASES)}")
    rows = distributed_check.compare(args.phases, processes=2)
    print(distributed_check.table(rows))
    if all(row.equal for row in rows):
        print(f"2 processes train as one: every difference is within {distributed_check.TOLERANCE:g}")
        return 0
    print(f"2 processes differ from one beyond {distributed_check.TOLERANCE:g}: see the rows marked NO",
          file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rlhf_course", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    profile_help = f"one of {', '.join(PROFILES)} (default: $RLHF_PROFILE, else gpu with CUDA, else tiny)"
    seed_help = "the course seed: every training and sampling stream, not the world (default: $RLHF_SEED, else 0)"

    run = commands.add_parser("run", help="execute the notebooks headless, in order, in fresh kernels")
    run.add_argument("--profile", help=profile_help)
    run.add_argument("--seed", type=int, help=seed_help)
    run.add_argument("--from", dest="start", metavar="NN", help="start at notebook NN (earlier checkpoints must exist)")
    run.add_argument("--until", metavar="NN", help="stop after notebook NN (e.g. 02)")
    run.add_argument("--timeout", type=int, default=3600, help="seconds one cell may run (default 3600)")
    run.add_argument("--keep-going", action="store_true",
                     help="run every cell and notebook even after a failure; report failures at the end")
    run.add_argument("--notebooks", type=Path, default=NOTEBOOK_DIR, metavar="DIR",
                     help="the notebooks to run (default: the course's; e.g. the student edition's folder)")
    run.set_defaults(func=command_run)

    edition = commands.add_parser("exercises", help="write the student edition: every solution replaced by a stub")
    edition.add_argument("--out", type=Path, default=repo_root() / "runs" / "student",
                         help="where to write it (default: runs/student)")
    edition.set_defaults(func=command_exercises)

    report = commands.add_parser("report", help="print the report of a run")
    report.add_argument("--profile", help=profile_help)
    report.add_argument("--seed", type=int, help=seed_help)
    report.set_defaults(func=command_report)

    clean = commands.add_parser("clean", help="delete everything a run made for a profile")
    clean.add_argument("--profile", help=profile_help)
    clean.add_argument("--seed", type=int, help=seed_help)
    clean.set_defaults(func=command_clean)

    add_prefs_commands(commands.add_parser("prefs", help="preference files"))

    from rlhf_course.course.launch import NOT_YET_LAUNCHED, SUPERVISED  # light: no torch-heavy imports yet

    train = commands.add_parser("train", help="train one phase outside a notebook (1 process, or N under torchrun)")
    train.add_argument("phase", choices=[*SUPERVISED, *NOT_YET_LAUNCHED])
    train.add_argument("--profile", help=profile_help)
    train.add_argument("--seed", type=int, help=seed_help)
    train.set_defaults(func=command_train)

    check = commands.add_parser("distributed-check",
                                help="train each phase a few steps (PPO and GRPO: one update from the same "
                                     "rollout) in 1 and in 2 processes; compare")
    check.add_argument("phases", nargs="*", metavar="PHASE",
                       help=f"which phases (default: all of {', '.join([*SUPERVISED, *NOT_YET_LAUNCHED])})")
    check.set_defaults(func=command_distributed_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ProfileError, CheckpointError, RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, (UsageError, ProfileError)) else 1


if __name__ == "__main__":
    sys.exit(main())
