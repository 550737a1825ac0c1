#!/usr/bin/env python
"""Build the course's Jupyter Book site from the notebooks a run already executed.

    .venv/bin/python scripts/build_book.py [--profile P] [--no-run] [--allow-missing] [--if-stale]

1. Vendors the web assets the pages load at view time (scripts/vendor_web_assets.sh: MathJax,
   require.js, the widget renderer; npm registry only), so the site works without internet.
2. Finds the executed notebooks of the profile in `runs/<profile>/executed/` (see
   `rlhf_course.paths.runs_dir`). When one of `notebooks/NN_*.ipynb` has no executed copy it runs
   `python -m rlhf_course run --profile P` first; with `--no-run` it stops and says what to run.
3. Checks them: an error output (outside cells tagged `raises-exception`) or a notebook that was
   never executed fails the build. A widget view whose state was not saved (nbval's copies) is
   reduced to its text fallback.
4. Stages them into `book/chapters/` (git-ignored) and runs
   `jupyter-book build book -W -n --keep-going` from a clean `book/_build`, with notebook execution
   off: the book never re-runs training. Any warning, broken reference or missing file fails.
5. Writes `book/_build/html/_build_info.json` (profile, chapters, pages, inputs' fingerprint) and
   prints the output path, the page count and the build time.

`--if-stale` skips steps 3-4 when `_build_info.json` shows that the same inputs were already built
(so CI can build once and let tests/book/test_book_site.py reuse the site).
Exit status: 0 built (or up to date), 1 build failed, 2 bad or missing input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
STAGE = BOOK / "chapters"  # git-ignored: rebuilt on every build
BUILD = BOOK / "_build"
HTML = BUILD / "html"
INFO = HTML / "_build_info.json"
VENDOR_SCRIPT = ROOT / "scripts" / "vendor_web_assets.sh"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
RAISES_TAGS = {"raises-exception", "nbval-raises-exception"}  # exercise stubs that fail on purpose
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\S+")  # tqdm's text: "desc:  40%|████      | 2/5 [00:01<...]"

sys.path.insert(0, str(ROOT))


class InputError(Exception):
    """Missing or broken input (executed notebooks): exit status 2, one clear message."""


def resolve_profile(name: str | None) -> tuple[str, Path]:
    """The profile's name and its executed-notebook folder, as the course itself resolves them."""
    from rlhf_course.config import ProfileError, get_profile
    from rlhf_course.paths import runs_dir

    try:
        profile = get_profile(name)
    except ProfileError as error:
        raise InputError(str(error)) from None
    return profile.name, runs_dir(profile.name) / "executed"


def course_notebooks() -> list[str]:
    return sorted(p.name for p in (ROOT / "notebooks").glob(NOTEBOOK_GLOB))


def find_executed(profile: str, executed: Path, run: bool, allow_missing: bool) -> list[Path]:
    """The executed notebooks to build from, in course order; runs the course when some are missing."""

    def missing() -> list[str]:
        have = {p.name for p in executed.glob(NOTEBOOK_GLOB)}
        return [name for name in course_notebooks() if name not in have]

    command = f"{Path(sys.executable).name} -m rlhf_course run --profile {profile}"
    absent = missing()
    have_any = any(executed.glob(NOTEBOOK_GLOB))
    if (absent and not allow_missing) or not have_any:
        what = ", ".join(absent) if absent else "any notebook"
        if not run:
            raise InputError(
                f"no executed copy of {what} in {executed}.\n"
                f"Run the course first:  {command}\n"
                f"(or build from what is there with --allow-missing)"
            )
        print(f"No executed copy of {what} in {executed}: running the course first ({command}).", flush=True)
        status = subprocess.run([sys.executable, "-m", "rlhf_course", "run", "--profile", profile], cwd=ROOT).returncode
        if status != 0:
            raise InputError(f"`{command}` failed (exit status {status}); the book needs a successful run")
        absent = missing()
        if absent and not allow_missing:
            raise InputError(f"still no executed copy of {', '.join(absent)} in {executed} after the run")
    names = set(course_notebooks())
    found = sorted(executed.glob(NOTEBOOK_GLOB))
    if not names:  # no notebooks in the repository (yet): build from whatever was executed
        return found
    extra = [p.name for p in found if p.name not in names]
    if extra:
        print(f"note: skipping executed notebooks that notebooks/ no longer has: {', '.join(extra)}")
    chosen = [p for p in found if p.name in names]
    if not chosen:
        raise InputError(f"none of the executed notebooks in {executed} is one of notebooks/{NOTEBOOK_GLOB}")
    return chosen


def fingerprint(profile: str, notebooks: list[Path]) -> str:
    """A hash of everything the site is made from: book sources, notebooks, vendored versions, this script."""
    digest = hashlib.sha256(profile.encode())
    sources = [
        p
        for p in sorted(BOOK.rglob("*"))
        if p.is_file() and p.relative_to(BOOK).parts[0] not in {"_build", "chapters", "_vendor"}
    ]
    vendored = BOOK / "_vendor" / "offline" / "VERSIONS"
    for path in [*sources, *notebooks, Path(__file__), VENDOR_SCRIPT, vendored]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()


def code_sources(nb: dict) -> list[str]:
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]


def check_and_stage(notebooks: list[Path]) -> list[str]:
    """Copy the notebooks into book/chapters/, failing on error outputs; returns the problems found."""
    problems: list[str] = []
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    for path in notebooks:
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            problems.append(f"{path}: not a readable notebook ({error})")
            continue
        code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
        if code and not any(c.get("outputs") or c.get("execution_count") for c in code):
            problems.append(f"{path.name}: has no outputs at all; it was saved without being executed")
        for number, cell in enumerate(code, 1):
            if set(cell.get("metadata", {}).get("tags", [])) & RAISES_TAGS:
                continue  # an exercise stub that fails on purpose
            for out in cell.get("outputs", []):
                text = out.get("text", "")
                text = "".join(text) if isinstance(text, list) else text
                if out.get("output_type") == "error":
                    problems.append(f"{path.name}, code cell {number}: {out.get('ename')}: {out.get('evalue')}")
                elif out.get("name") == "stderr" and "Traceback (most recent call last)" in text:
                    problems.append(f"{path.name}, code cell {number}: a traceback was printed to stderr")
        stripped = strip_stateless_widgets(nb)
        if stripped:
            print(f"note: {path.name}: {stripped} widget view(s) without saved widget state, shown as text")
        source = ROOT / "notebooks" / path.name
        if source.exists():
            try:
                if code_sources(json.loads(source.read_text(encoding="utf-8"))) != code_sources(nb):
                    print(f"warning: {path.name}: its code differs from notebooks/{path.name} (a stale run?)")
            except (OSError, ValueError, KeyError):
                pass
        (STAGE / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return problems


def strip_stateless_widgets(nb: dict) -> int:
    """Drop widget-view outputs whose model is not in the notebook's saved widget state.

    nbval (and any executor without `store_widget_state`) saves the view but not the state; the page
    would then hold a view the renderer cannot draw. Without it the output's text/plain fallback is
    shown, or nothing; a progress bar's fallback (its first frame, e.g. `sampling:   0%|   | 0/2`) is dropped.
    """
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    removed = 0
    for cell in nb.get("cells", []):
        outputs = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            view = data.get(WIDGET_VIEW)
            if view is not None and view.get("model_id") not in state:
                del data[WIDGET_VIEW]
                removed += 1
                text = data.get("text/plain", "")
                if not data or PROGRESS_BAR.search("".join(text) if isinstance(text, list) else text):
                    continue  # a closed progress bar: its text would show it frozen where it started
            outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs
    return removed


def jupyter_book() -> str:
    local = Path(sys.executable).parent / "jupyter-book"
    return str(local) if local.exists() else "jupyter-book"


def count_pages() -> int:
    """HTML pages made from the book's documents (not the search and index pages Sphinx adds)."""
    skip = {"index.html", "genindex.html", "search.html", "py-modindex.html"}  # index.html: redirect to intro
    return sum(
        1
        for p in HTML.rglob("*.html")
        if p.name not in skip and not p.relative_to(HTML).parts[0].startswith("_")
    )


def build(profile: str, notebooks: list[Path], print_fn=print) -> dict:
    start = time.perf_counter()
    problems = check_and_stage(notebooks)
    if problems:
        raise InputError("the executed notebooks have errors:\n  " + "\n  ".join(problems))
    if BUILD.exists():
        shutil.rmtree(BUILD)  # a clean build: no pages left over from chapters that went away
    BUILD.mkdir(parents=True)
    log_path = BUILD / "build.log"
    command = [jupyter_book(), "build", str(BOOK), "-W", "-n", "--keep-going"]
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    with open(log_path, "w", encoding="utf-8") as log:
        status = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    output = re.sub(r"\x1b\[[0-9;]*m", "", log_path.read_text(encoding="utf-8", errors="replace"))  # no colours
    seconds = time.perf_counter() - start
    if status != 0 or not (HTML / "index.html").exists():
        warnings = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line]
        print_fn("\n".join(warnings) or output[-4000:])
        raise RuntimeError(
            f"jupyter-book build failed (exit status {status}, {len(warnings)} warning/error lines); "
            f"full log: {log_path}"
        )
    info = {
        "profile": profile,
        "chapters": [p.name for p in notebooks],
        "sources": [str(p) for p in notebooks],
        "pages": count_pages(),
        "build_seconds": round(seconds, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "fingerprint": fingerprint(profile, notebooks),
    }
    INFO.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def read_info() -> dict | None:
    try:
        return json.loads(INFO.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", help="course profile (default: $RLHF_PROFILE, else gpu with CUDA, else tiny)")
    parser.add_argument(
        "--no-run", action="store_true", help="never run the course; fail when executed notebooks are missing"
    )
    parser.add_argument(
        "--allow-missing", action="store_true", help="build from the executed notebooks there are, even if some lack"
    )
    parser.add_argument("--if-stale", action="store_true", help="do nothing when the same inputs were already built")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        status = subprocess.run(["bash", str(VENDOR_SCRIPT)], cwd=ROOT).returncode
        if status != 0:
            raise InputError(f"vendoring the web assets failed (exit status {status})")
        profile, executed = resolve_profile(args.profile)
        notebooks = find_executed(profile, executed, run=not args.no_run, allow_missing=args.allow_missing)
        info = read_info()
        if args.if_stale and info and info.get("fingerprint") == fingerprint(profile, notebooks):
            print(f"Book up to date (built {info['built_at']} in {info['build_seconds']} s); nothing to do.")
        else:
            print(f"Building the book ({profile}) from {len(notebooks)} notebook(s) in {executed}", flush=True)
            info = build(profile, notebooks)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Site:     {HTML / 'index.html'}")
    print(f"Pages:    {info['pages']} ({len(info['chapters'])} chapters: {', '.join(info['chapters'])})")
    print(f"Build:    {info['build_seconds']} s (book), {time.perf_counter() - start:.1f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
