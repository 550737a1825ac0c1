"""The ranking widget in a real browser: JupyterLab + a Chromium-family browser, driven by Playwright.

A person's path, clicked in the page: type a name, Start, give each answer of item 1 a place (with a
tie), Submit, Skip item 2; then the JSONL file must hold one ranking and one skip.

Needs a Chromium-family browser (`tests/browser_finder.py` says which it found) — skipped, with the
reason, without one. Jupyter runs with throw-away config/runtime/settings folders, `--allow-root` (CI is root),
a random token and port, and no news/update/extension-manager network calls.
Screenshot: runs/browser/ranking_widget.png. Takes ~15-25 s, bounded by 60 s waits.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO_ROOT / "runs" / "browser" / "ranking_widget.png"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage"]
TIMEOUT_MS = 60_000

ITEMS = [
    {"prompt": "Write a happy story about a fox named Lily in the forest.",
     "answers": ["Lily the fox smiled. The end.", "Buy now! Click here!", "Lily was a fox. She was glad."],
     "checkpoint": "browser-test"},
    {"prompt": "Tell me a sad story about Tom the dog, set in the park.",
     "answers": ["Tom sat alone in the park and cried.", "Shut up."],
     "checkpoint": "browser-test"},
]


def make_ranking_notebook(folder: Path, cell_source: str, name: str = "ranking_widget.ipynb") -> Path:
    """Write a one-cell notebook into `folder` (point `cell_source` at another widget cell to test that)."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(cell_source)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    path = folder / name
    nbformat.write(notebook, path)
    return path


def course_widget_cell() -> str:
    """The ranking-widget cell of the course's notebook 03, verbatim."""
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "03_reward_model.ipynb", as_version=4)
    return next(c.source for c in notebook.cells if c.cell_type == "code" and "RankingWidget(" in c.source)


def widget_cell(items: list[dict], store_folder: Path) -> str:
    """The items notebook 03 would have sampled (fixed here), then notebook 03's own widget cell."""
    setup = (
        "from rlhf_course import course\n"
        "from rlhf_course.feedback import preference_store, widgets\n"
        f"items = {items!r}\n"
    )
    return setup + "\n" + course_widget_cell() + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_jupyterlab(root_dir: Path, home: Path, preferences: Path) -> tuple[subprocess.Popen, str, str]:
    """JupyterLab on a free port, random token, isolated Jupyter folders; returns (process, token, base URL).

    Its kernels write people's rankings to `preferences` (not the course's data/preferences/), and a person
    is at the widget (RLHF_HEADLESS unset), so notebook 03's cell waits for clicks.
    """
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ,
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", RLHF_PREFERENCES_DIR=str(preferences))
    env.pop("RLHF_HEADLESS", None)
    # silence the "Would you like to get notified about official Jupyter news?" toast
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
               "--allow-root", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
    log = open(home / "lab.log", "w")
    lab = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root_dir)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
            return lab, token, base
        except OSError:
            if lab.poll() is not None:
                break
            time.sleep(0.5)
    stop(lab)
    raise AssertionError(f"JupyterLab did not start; log:\n{(home / 'lab.log').read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()  # only the process this test started
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_all_cells(page) -> None:
    """Run > Run All Cells, once the kernel is really there.

    RACE: "Run All" before the session has a kernel pops a "Select Kernel" dialog and nothing runs. The
    toolbar's execution indicator says idle before the kernel exists; the status bar's "| Idle" does not.
    """
    page.wait_for_function(
        "() => /\\| Idle/.test(document.querySelector('.jp-StatusBar-Widget')?.textContent || '')"
    )
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    dialog = page.locator(".jp-Dialog-button.jp-mod-accept")  # belt and braces for the race
    if dialog.count():
        dialog.first.click()


def wait_for_status(page, text: str) -> None:
    page.wait_for_function(
        "text => (document.querySelector('.rlhf-status')?.textContent || '').includes(text)", arg=text
    )


def test_rank_and_skip_in_jupyterlab(tmp_path, browser_path):
    from playwright.sync_api import sync_playwright

    started = time.monotonic()

    def step(message: str) -> None:
        print(f"[{time.monotonic() - started:5.1f} s] {message}", flush=True)

    lab_root, home, store_folder = tmp_path / "lab", tmp_path / "jupyter-home", tmp_path / "prefs"
    lab_root.mkdir()
    make_ranking_notebook(lab_root, widget_cell(ITEMS, store_folder))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    lab, token, base = start_jupyterlab(lab_root, home, store_folder)
    step("jupyterlab up")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=browser_path, headless=True, args=CHROME_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            try:
                page.goto(f"{base}/lab/tree/ranking_widget.ipynb?token={token}")
                page.wait_for_selector(".jp-Notebook .jp-Cell", state="visible")
                step("notebook open")
                run_all_cells(page)
                page.wait_for_selector(".rlhf-start", state="visible")  # the widget view rendered
                step("kernel idle, cells run, widget rendered")

                page.fill(".rlhf-annotator input", "browser tester")
                page.click(".rlhf-start")
                page.wait_for_selector(".rlhf-submit", state="visible")
                # item 1: answer B best, A and C tie second
                page.click(".rlhf-rank-1-0")
                page.click(".rlhf-rank-0-1")
                page.click(".rlhf-rank-2-1")
                page.wait_for_selector(".rlhf-rank-2-1.mod-info")  # the kernel answered: places shown
                page.screenshot(path=str(SCREENSHOT))  # item 1 with B 1st, A and C tied 2nd
                page.click(".rlhf-submit")
                wait_for_status(page, "saved #1")
                page.wait_for_function(  # item 2 is on screen
                    "text => (document.querySelector('.rlhf-prompt')?.textContent || '').includes(text)",
                    arg=ITEMS[1]["prompt"],
                )
                step("item 1 ranked and saved")
                page.click(".rlhf-skip")
                wait_for_status(page, "skipped item 2")
                page.wait_for_function(
                    "() => (document.querySelector('.rlhf-progress')?.textContent || '').includes('2 / 2 done')"
                )
                step("item 2 skipped")
            except Exception:
                page.screenshot(path=str(SCREENSHOT.with_suffix(".fail.png")))
                print((home / "lab.log").read_text()[-3000:])
                raise
            finally:
                browser.close()
    finally:
        stop(lab)

    rows = [json.loads(line) for line in (store_folder / "browser tester.jsonl").read_text().splitlines()]
    assert len(rows) == 2, rows
    ranking, skip = rows
    assert ranking["ranking"] == [[1], [0, 2]] and ranking["prompt"] == ITEMS[0]["prompt"]
    assert ranking["annotator"] == "browser tester" and ranking["checkpoint"] == "browser-test"
    assert skip.get("skipped") is True and "ranking" not in skip and skip["prompt"] == ITEMS[1]["prompt"]
    step(f"JSONL checked; screenshot: {SCREENSHOT}")
    print(f"browser test wall time: {time.monotonic() - started:.1f} s")
