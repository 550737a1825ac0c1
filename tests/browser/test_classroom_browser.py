"""A class in a real browser: two students and the instructor, three pages of one JupyterLab, three kernels.

The instructor has written the assignment into a class folder (RLHF_CLASS_DIR). A name not in it gets the
widget's one-line message; then ana ranks two items and ben one, each on their own page (their own notebook,
so their own kernel), into the same folder; the instructor's page shows both counts after Refresh. Checked:
what each page shows, and the two JSONL files. Screenshot: runs/browser/instructor_view.png.

Reuses the JupyterLab and Playwright helpers of test_ranking_widget_browser.py (throw-away Jupyter folders,
--allow-root, a random token, no network calls). Takes ~25-40 s, bounded by 60 s waits.
"""

from __future__ import annotations

import json
import time

import pytest
from test_ranking_widget_browser import (
    CHROME_ARGS,
    REPO_ROOT,
    TIMEOUT_MS,
    make_ranking_notebook,
    run_all_cells,
    start_jupyterlab,
    stop,
)

from rlhf_course.feedback import class_numbers, classroom

SCREENSHOT = REPO_ROOT / "runs" / "browser" / "instructor_view.png"
ITEMS = [
    {"prompt": "Write a happy story about a fox named Lily in the forest.",
     "answers": ["Lily the fox smiled. The end.", "Buy now! Click here!"], "checkpoint": "browser-test"},
    {"prompt": "Tell me a sad story about Tom the dog, set in the park.",
     "answers": ["Tom sat alone in the park and cried. The end.", "Shut up."], "checkpoint": "browser-test"},
    {"prompt": "Write a funny story about Mia the duck at the lake.",
     "answers": ["Mia the duck giggled at the lake. The end.", "Mia. Mia. Mia."], "checkpoint": "browser-test"},
]
STUDENT_CELL = "from rlhf_course.feedback import classroom\nclassroom.student_widget()\n"
INSTRUCTOR_CELL = "from rlhf_course.feedback import class_view\nclass_view.ClassView()\n"


# RACE: a tab in the background is not laid out (its cells never become "visible") and its timers are slowed,
# so the test brings each page to the front before it waits on it or clicks in it, and Chromium is told not
# to throttle background tabs.
BACKGROUND_TABS_RUN = ["--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows",
                       "--disable-renderer-backgrounding"]


def front(page):
    page.bring_to_front()
    return page


def text_of(page, selector: str) -> str:
    return page.evaluate("s => document.querySelector(s)?.textContent || ''", selector)


def wait_for_text(page, selector: str, text: str) -> None:
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.textContent || '').includes(t)",
                           arg=[selector, text])


def start_student(page, name: str) -> None:
    front(page)
    page.fill(".rlhf-annotator input", name)
    page.click(".rlhf-start")


def rank_and_submit(page, best: int, saved: int) -> None:
    """Give answer `best` the 1st place and the other the 2nd, Submit, and wait for "saved #`saved`"."""
    front(page)
    page.click(f".rlhf-rank-{best}-0")
    page.click(f".rlhf-rank-{1 - best}-1")
    page.wait_for_selector(f".rlhf-rank-{1 - best}-1.mod-info")  # the kernel answered: places shown
    page.click(".rlhf-submit")
    wait_for_text(page, ".rlhf-status", f"saved #{saved}")


def test_two_students_rank_into_one_class_folder_and_the_instructor_sees_them(tmp_path, monkeypatch, browser_path):
    from playwright.sync_api import sync_playwright

    started = time.monotonic()

    def step(message: str) -> None:
        print(f"[{time.monotonic() - started:5.1f} s] {message}", flush=True)

    lab_root, home, class_dir = tmp_path / "lab", tmp_path / "jupyter-home", tmp_path / "class"
    lab_root.mkdir()
    classroom.write_assignment(class_dir, classroom.make_assignment(ITEMS, ["ana", "ben"], rankings_each=3,
                                                                    everyone_ranks=3))
    notebooks = {"ana": "student_ana.ipynb", "ben": "student_ben.ipynb", "instructor": "instructor.ipynb"}
    for who, name in notebooks.items():  # one notebook each: JupyterLab gives each notebook its own kernel
        make_ranking_notebook(lab_root, INSTRUCTOR_CELL if who == "instructor" else STUDENT_CELL, name)
    monkeypatch.setenv("RLHF_CLASS_DIR", str(class_dir))  # the kernels inherit it from JupyterLab
    monkeypatch.setenv("RLHF_PROFILE", "tiny")  # the view's scale line without importing torch for the profile
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    lab, token, base = start_jupyterlab(lab_root, home, tmp_path / "unused-preferences")
    step("jupyterlab up")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=browser_path, headless=True,
                                                 args=CHROME_ARGS + BACKGROUND_TABS_RUN)
            pages = {}
            try:
                for who, name in notebooks.items():  # open all three first: their kernels start side by side
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    page.set_default_timeout(TIMEOUT_MS)
                    # a workspace of its own: otherwise each tab restores the others' notebooks (one workspace
                    # is shared by every tab of a JupyterLab) and waits on a cell hidden behind them
                    page.goto(f"{base}/lab/workspaces/{who}/tree/{name}?token={token}")
                    pages[who] = page
                for who, page in pages.items():
                    front(page).wait_for_selector(".jp-Notebook .jp-Cell", state="visible")
                    run_all_cells(page)
                ana, ben, instructor = pages["ana"], pages["ben"], pages["instructor"]
                for page in (ana, ben):
                    front(page).wait_for_selector(".rlhf-start", state="visible")
                front(instructor).wait_for_selector(".rlhf-class-refresh", state="visible")
                wait_for_text(instructor, ".rlhf-class-summary", "0 of 2 students")
                step("three kernels, two student widgets and the instructor's view rendered")

                start_student(ben, "zed")  # not in the assignment: one clear line, nothing written
                wait_for_text(ben, ".rlhf-status", "'zed' is not in the class assignment")
                start_student(ana, "ana")
                start_student(ben, "ben")
                front(ana).wait_for_selector(".rlhf-submit", state="visible")
                front(ben).wait_for_selector(".rlhf-submit", state="visible")
                rank_and_submit(ana, best=0, saved=1)
                rank_and_submit(ben, best=1, saved=1)  # ben disagrees with ana on item 1
                rank_and_submit(ana, best=0, saved=2)
                wait_for_text(front(ana), ".rlhf-progress", "2 / 3 done")
                wait_for_text(front(ben), ".rlhf-progress", "1 / 3 done")
                step("ana ranked 2 items, ben 1")

                assert "3 rankings" not in text_of(front(instructor), ".rlhf-class-summary")  # nothing until Refresh
                instructor.click(".rlhf-class-refresh")
                wait_for_text(instructor, ".rlhf-class-summary", "3 rankings")
                shown = text_of(instructor, ".rlhf-class-summary")
                rows = instructor.evaluate(
                    "() => Object.fromEntries([...document.querySelectorAll('.rlhf-class-table tr[data-student]')]"
                    ".map(tr => [tr.dataset.student, [...tr.cells].map(td => td.textContent)]))")
                instructor.screenshot(path=str(SCREENSHOT))
                step(f"instructor's view after Refresh: {rows}")
            except Exception:
                for who, page in pages.items():
                    page.screenshot(path=str(SCREENSHOT.with_name(f"instructor_view.{who}.fail.png")))
                print((home / "lab.log").read_text()[-3000:])
                raise
            finally:
                browser.close()
    finally:
        stop(lab)

    assert "2 of 2 students have ranked: 3 rankings (0 skipped) → 3 pairs" in shown
    assert rows["ana"][:4] == ["ana", "2 / 3", "0", "2"] and rows["ben"][:4] == ["ben", "1 / 3", "0", "1"]
    # on item 1 they disagree, so each agrees with "the class" (the other) on 0 of 1 pair
    assert rows["ana"][4] == rows["ben"][4] == "0.00" and rows["(all)"][1:4] == ["3", "0", "3"]
    files = {who: [json.loads(line) for line in (class_dir / f"{who}.jsonl").read_text().splitlines()]
             for who in ("ana", "ben")}
    assert [r["ranking"] for r in files["ana"]] == [[[0], [1]], [[0], [1]]]
    assert [r["ranking"] for r in files["ben"]] == [[[1], [0]]] and files["ben"][0]["prompt"] == ITEMS[0]["prompt"]
    assert not (class_dir / "zed.jsonl").exists()
    summary = class_numbers.class_summary(class_dir, simulated_pairs=5600)  # the same numbers without a browser
    assert (summary.rankings, summary.pairs, summary.student("ana").vs_class) == (3, 3, 0.0)
    step(f"JSONL checked; screenshot: {SCREENSHOT}")
    print(f"browser test wall time: {time.monotonic() - started:.1f} s")
