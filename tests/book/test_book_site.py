"""The course as a Jupyter Book site: built from the executed notebooks, checked in a real browser.

The build (`scripts/build_book.py --no-run --if-stale`) uses the notebooks the course already
executed for the profile (`runs/<profile>/executed/`, written by `python -m rlhf_course run` or by
nbval in CI), so run this after them. If the same inputs were already built (e.g. by an earlier CI
step) the site is reused, not rebuilt.

The browser test serves the built site on 127.0.0.1 and opens every page in a headless
Chromium-family browser (Playwright; `tests/browser_finder.py`). Every request to another host is blocked and
counted as a failure: the site must work without internet. It checks for failed requests, JS
errors, error outputs, typeset math, rendered widgets and, in chapters 01-07, at least one figure.
Screenshots go to `runs/<profile>/book-screenshots/`. The browser test is skipped only when no browser is found.

With RLHF_SCREENSHOTS set, `test_full_page_screenshots` also saves full-page screenshots of the pages a
reader should look at after a change to the text (the landing page, chapters 03, 04, 05 and 07, the page
"Will it work on my machine?"; `tests/book/site_screenshots.py`) into `runs/<profile>/book-screenshots/full-page/`
(RLHF_SCREENSHOTS=1) or into the folder it names; it prints each page's height. Without it that test is skipped.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from site_screenshots import CODE_COLUMN_JS, take  # tests/book/: pytest puts this folder on sys.path

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "book" / "_build" / "html"
CHROME_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
# Failed requests that are harmless, each with its reason. Empty on purpose: the widget icon fonts,
# the usual suspect, are vendored beside embed-amd.js (scripts/vendor_web_assets.sh).
IGNORED_FAILURES: dict[str, str] = {}
TRAINING_CHAPTERS = ("01", "02", "03", "04", "05", "06", "07")  # must show at least one figure
CODE_COLUMN_CHARS = 100  # code lines of this many characters fit in a code cell at 1280 px (book/_assets/course.css)


def _profile() -> str:
    sys.path.insert(0, str(ROOT))
    from rlhf_course.config import get_profile

    return get_profile().name


@pytest.fixture(scope="module")
def site() -> dict:
    """Build the book (or reuse a build of the same inputs); returns its _build_info.json."""
    profile = _profile()
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_book.py"), "--profile", profile, "--no-run", "--if-stale"],
        cwd=ROOT, capture_output=True, text=True,
    )
    print(result.stdout, result.stderr, sep="\n")
    assert result.returncode == 0, f"book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    info = json.loads((HTML / "_build_info.json").read_text())
    info["wall_seconds"] = round(time.perf_counter() - start, 1)
    return info


def test_book_builds(site, capsys):
    assert site["chapters"], "the book has no chapters"
    for name in site["chapters"]:
        assert (HTML / "chapters" / name.replace(".ipynb", ".html")).exists(), name
    for page in ("intro.html", "setup.html", "exercises.html", "ppo_details.html", "classroom.html",
                 "robustness.html", "glossary.html", "references.html"):
        assert (HTML / page).exists(), page
    with capsys.disabled():
        print(f"\nbook: profile {site['profile']}, {site['pages']} pages, built in {site['build_seconds']} s "
              f"(this test: {site['wall_seconds']} s)")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the site quietly and remembers every answer >= 400, including requests the browser
    makes on its own (which Playwright's page events do not show, e.g. /favicon.ico)."""

    errors: list[str] = []

    def log_request(self, code="-", size="-"):
        if str(code).isdigit() and int(code) >= 400:
            self.errors.append(f"{self.path} (HTTP {code}, seen by the server)")

    def log_message(self, *args):  # keep the test output readable
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


# Runs in the page: error outputs and tracebacks outside cells tagged raises-exception,
# math and widgets before/after rendering, and the notebook figures that actually loaded.
PAGE_REPORT_JS = """() => {
  const allowed = el => !!el.closest('.tag_raises-exception, .tag_nbval-raises-exception');
  const errors = [];
  for (const el of document.querySelectorAll('.cell_output .output.traceback, .cell_output .output.error')) {
    if (!allowed(el)) errors.push(el.innerText.slice(0, 300));
  }
  for (const el of document.querySelectorAll('.cell_output .output.stderr, .cell_output .output.stream')) {
    if (!allowed(el) && el.innerText.includes('Traceback (most recent call last)')) {
      errors.push(el.innerText.slice(0, 300));
    }
  }
  const main = document.querySelector('main') || document.body;
  const figures = [...document.querySelectorAll('.cell_output img')]
    .filter(img => img.complete && img.naturalWidth > 0).length;
  const brokenImages = [...document.querySelectorAll('img')]
    .filter(img => img.complete && img.naturalWidth === 0).map(img => img.getAttribute('src'));
  return {
    errors,
    figures,
    brokenImages,
    mathNodes: document.querySelectorAll('.math').length,
    mathRendered: document.querySelectorAll('mjx-container').length,
    rawTex: [...document.querySelectorAll('.math')].filter(el => !el.querySelector('mjx-container')).length,
    widgetViews: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    widgetsRendered: document.querySelectorAll('.jupyter-widgets, .widget-inline-hbox, .widget-box').length,
    title: document.title,
    text: main.innerText.length,
  };
}"""


def _screenshot_dir(profile: str) -> Path:
    sys.path.insert(0, str(ROOT))
    from rlhf_course.paths import runs_dir

    folder = runs_dir(profile) / "book-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):  # only this run's screenshots
        old.unlink()
    return folder


def test_book_site_in_browser(site, server, capsys, browser_path):
    from playwright.sync_api import sync_playwright

    chapters = [name.replace(".ipynb", ".html") for name in site["chapters"]]
    pages = ["intro.html", *[f"chapters/{c}" for c in chapters], "setup.html", "exercises.html", "ppo_details.html",
             "classroom.html", "robustness.html", "glossary.html", "references.html"]
    ppo = next((c for c in chapters if c.startswith("04_")), chapters[-1])
    shots_dir = _screenshot_dir(site["profile"])
    problems: list[str] = []
    shots: list[Path] = []
    start = time.perf_counter()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, headless=True, args=CHROME_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})

        def offline_only(route):  # the site must not need the internet: block and report other hosts
            if urlparse(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                route.abort("blockedbyclient")

        context.route("**/*", offline_only)
        for path in pages:
            page = context.new_page()
            failed: list[str] = []
            page.on("requestfailed", lambda r, f=failed: f.append(f"{r.url} ({r.failure})"))
            page.on("response", lambda r, f=failed: r.status >= 400 and f.append(f"{r.url} (HTTP {r.status})"))
            page.on("pageerror", lambda e, f=failed: f.append(f"JS error: {e}"))
            response = page.goto(f"{server}/{path}", wait_until="load")
            assert response is not None and response.ok, f"{path}: {response and response.status}"
            report = page.evaluate(PAGE_REPORT_JS)
            if report["mathNodes"]:  # wait for MathJax to typeset the page
                page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
                page.evaluate("() => MathJax.startup.promise")
            if report["widgetViews"]:  # wait for the widget renderer to draw the saved views
                page.wait_for_selector(".jupyter-widgets", state="attached", timeout=30_000)
            page.wait_for_load_state("networkidle")
            report = page.evaluate(PAGE_REPORT_JS)
            failed += _Handler.errors
            _Handler.errors.clear()
            failed = [f for f in failed if not any(key in f for key in IGNORED_FAILURES)]
            problems += [f"{path}: failed request or error: {f}" for f in failed]
            problems += [f"{path}: error output: {e!r}" for e in report["errors"]]
            problems += [f"{path}: broken image {src}" for src in report["brokenImages"]]
            if report["rawTex"]:
                problems.append(f"{path}: {report['rawTex']} of {report['mathNodes']} math blocks not typeset")
            if report["widgetViews"] and not report["widgetsRendered"]:
                problems.append(f"{path}: {report['widgetViews']} widget view(s), none rendered")
            if path.startswith("chapters/") and Path(path).name[:2] in TRAINING_CHAPTERS and report["figures"] < 1:
                problems.append(f"{path}: no rendered figure")
            if report["text"] < 200:
                problems.append(f"{path}: nearly empty page ({report['text']} characters)")
            if path == f"chapters/{ppo}":  # the content column is wide enough for the course's code lines
                column = page.evaluate(CODE_COLUMN_JS)
                if column and column["chars"] < CODE_COLUMN_CHARS:
                    problems.append(f"{path}: a code line holds {column['chars']} characters at 1280 px, "
                                    f"fewer than {CODE_COLUMN_CHARS}: see book/_assets/course.css")
            if path == "intro.html" or path == f"chapters/{ppo}":
                shot = shots_dir / f"{Path(path).stem}.png"
                page.screenshot(path=str(shot))
                shots.append(shot)
                figure = page.locator(".cell_output img").first
                if path != "intro.html" and figure.count():  # and the chapter's first figure, close up
                    shot = shots_dir / f"{Path(path).stem}-figure.png"
                    figure.screenshot(path=str(shot))
                    shots.append(shot)
            with capsys.disabled():
                print(f"  {path}: {report['figures']} figure(s), math {report['mathRendered']}/{report['mathNodes']}, "
                      f"widgets {report['widgetsRendered']} (views {report['widgetViews']})")
            page.close()
        browser.close()

    with capsys.disabled():
        print(f"book: {site['pages']} pages built in {site['build_seconds']} s; browser check of {len(pages)} pages "
              f"in {time.perf_counter() - start:.1f} s")
        for shot in shots:
            print(f"screenshot: {shot}")
    assert not problems, "\n".join(problems)
    assert all(s.exists() and s.stat().st_size > 2_000 for s in shots), shots


@pytest.mark.skipif(not os.environ.get("RLHF_SCREENSHOTS"), reason="set RLHF_SCREENSHOTS=1 (or a folder) for them")
def test_full_page_screenshots(site, capsys, browser_path):
    """Full-page screenshots of the pages to look at after a change to the text, for a person to read."""
    from rlhf_course.paths import runs_dir

    where = os.environ["RLHF_SCREENSHOTS"]
    folder = runs_dir(site["profile"]) / "book-screenshots" / "full-page"
    folder = folder if where.lower() in ("1", "yes", "true") else Path(where)
    for old in folder.glob("*.png"):  # only this run's screenshots
        old.unlink()
    shots = take(folder, browser_path, HTML)
    with capsys.disabled():
        for shot in shots:
            column = shot["code_column"]
            chars = f", {column['chars']} code characters a line" if column else ""
            print(f"screenshot: {shot['file']} ({shot['height']} px high{chars})")
    assert shots and all(Path(s["file"]).stat().st_size > 2_000 for s in shots), shots
