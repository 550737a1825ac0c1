"""Full-page screenshots of the built book, and how many code characters its column holds.

For looking at the site as a reader meets it (tests/book/test_book_site.py calls it when
RLHF_SCREENSHOTS=<folder> is set), or on its own, after `scripts/build_book.py`:

    .venv/bin/python tests/book/site_screenshots.py OUT_DIR [--html book/_build/html] [--page PAGE ...]

It serves the site on 127.0.0.1, opens each page in a 1280-pixel-wide headless Chromium
(`tests/browser_finder.py` finds one), waits for math and widgets, and saves `<page>.png`.
It prints each page's height in pixels and the number of monospace characters that fit on
one line of a code cell (the content column's width, in the unit code is written in).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "book" / "_build" / "html"
WIDTH, HEIGHT = 1280, 900
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"]
# The pages worth looking at after a change to the chapters' text: glob patterns under the site.
PAGES = ("intro.html", "chapters/03_*.html", "chapters/04_*.html", "chapters/05_*.html",
         "chapters/07_*.html", "robustness.html")

# Runs in the page: how many characters of the code font fit on one line of the first code cell.
CODE_COLUMN_JS = """() => {
  const pre = document.querySelector('div.cell div.cell_input pre');
  if (!pre) return null;
  const probe = document.createElement('span');
  probe.style.cssText = 'position:absolute;visibility:hidden;white-space:pre';
  probe.textContent = '0'.repeat(200);
  pre.appendChild(probe);
  const charWidth = probe.getBoundingClientRect().width / 200;
  probe.remove();
  const style = getComputedStyle(pre);
  const inner = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return {chars: Math.floor(inner / charWidth), pixels: Math.round(inner), font: style.fontSize};
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(html: Path = HTML):
    """The built site on 127.0.0.1; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def resolve_pages(html: Path = HTML, patterns=PAGES) -> list[str]:
    """The pages that exist for the patterns, as paths relative to the site."""
    found: list[str] = []
    for pattern in patterns:
        found += sorted(str(p.relative_to(html)) for p in html.glob(pattern))
    return found


def settle(page) -> None:
    """Wait for MathJax and the widget renderer to finish drawing the page."""
    if page.locator(".math").count():
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
    if page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count():
        page.wait_for_selector(".jupyter-widgets", state="attached", timeout=30_000)
    page.wait_for_load_state("networkidle")


def take(out_dir: Path, browser_path: str, html: Path = HTML, patterns=PAGES) -> list[dict]:
    """Full-page screenshots of the pages into out_dir; one dict per page (file, height, code column)."""
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    with serve(html) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, headless=True, args=CHROME_ARGS)
        context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
        context.route("**/*", lambda route: route.continue_()
                      if urlparse(route.request.url).hostname == "127.0.0.1" else route.abort())
        for path in resolve_pages(html, patterns):
            page = context.new_page()
            page.goto(f"{base}/{path}", wait_until="load")
            settle(page)
            shot = out_dir / f"{Path(path).stem}.png"
            page.screenshot(path=str(shot), full_page=True)
            height = page.evaluate("() => document.documentElement.scrollHeight")
            results.append({"page": path, "file": str(shot), "height": height,
                            "code_column": page.evaluate(CODE_COLUMN_JS)})
            page.close()
        browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--html", type=Path, default=HTML, help="the built site (default: book/_build/html)")
    parser.add_argument("--page", action="append", help="a page or glob under the site (repeatable)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    from browser_finder import find_browser

    browser, how = find_browser()
    if browser is None:
        print(f"no browser: {how}", file=sys.stderr)
        return 2
    for r in take(args.out_dir, browser, args.html, tuple(args.page) if args.page else PAGES):
        column = r["code_column"]
        width = f"{column['chars']} code characters ({column['pixels']} px)" if column else "no code cell"
        print(f"{r['file']}: {r['height']} px high; code column {width}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
