"""Find a Chromium-family browser for the browser tests, or say in one line why there is none.

The course itself never needs a browser: only `tests/browser` (the widgets in JupyterLab) and `tests/book` (the
built site) drive one, through Playwright. They use whatever Chromium-family browser the machine already has:

1. `$RLHF_BROWSER`, a path to the browser's executable (anything Chromium-based);
2. one on the PATH (`chromium`, `chromium-browser`, `google-chrome`, `microsoft-edge`, …);
3. Chrome, Chromium or Edge where macOS and Windows install them;
4. the Chromium that `python -m playwright install chromium` downloads (into the user's cache; no root).

As a script it reports what it found; `--install` adds Debian's `chromium` with apt-get when nothing was found
and it runs as root on a machine with apt-get (as CI does). It never asks for a password and never fails:
without a browser the browser tests are skipped, each with the reason this module gives.

    python tests/browser_finder.py [--install]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ON_PATH = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome",
           "microsoft-edge", "microsoft-edge-stable", "msedge")
MACOS_APPS = ("Google Chrome.app/Contents/MacOS/Google Chrome", "Chromium.app/Contents/MacOS/Chromium",
              "Microsoft Edge.app/Contents/MacOS/Microsoft Edge")
WINDOWS_APPS = (r"Google\Chrome\Application\chrome.exe", r"Chromium\Application\chrome.exe",
                r"Microsoft\Edge\Application\msedge.exe")
HOW_TO_GET_ONE = ("install Chrome, Chromium or Edge, or run `python -m playwright install chromium` "
                  "(no root needed), or set RLHF_BROWSER to a Chromium-family browser")


def _runnable(path: str | Path) -> bool:
    path = Path(path)
    return path.is_file() and os.access(path, os.X_OK)


def _installed_apps() -> list[Path]:
    """Where macOS and Windows put the usual Chromium-family browsers."""
    if sys.platform == "darwin":
        roots = [Path("/Applications"), Path.home() / "Applications"]
        return [root / app for root in roots for app in MACOS_APPS]
    if os.name == "nt":
        roots = [os.environ.get(v) for v in ("PROGRAMFILES", "PROGRAMFILES(X86)", "LOCALAPPDATA")]
        return [Path(root) / app for root in roots if root for app in WINDOWS_APPS]
    return []


def _playwright_chromium() -> Path | None:
    """The browser `playwright install chromium` downloaded, if it did (asking Playwright where it keeps it)."""
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            path = Path(playwright.chromium.executable_path)
    except Exception:  # Playwright missing or its driver cannot start: no browser from there
        return None
    return path if _runnable(path) else None


def find_browser() -> tuple[str | None, str]:
    """`(path, how it was found)`, or `(None, why there is none and how to get one)`."""
    chosen = os.environ.get("RLHF_BROWSER")
    if chosen:
        if _runnable(chosen):
            return chosen, "RLHF_BROWSER"
        return None, f"RLHF_BROWSER={chosen} is not an executable file; {HOW_TO_GET_ONE}"
    for name in ON_PATH:
        found = shutil.which(name)
        if found and _runnable(found):
            return found, "on the PATH"
    for path in _installed_apps():
        if _runnable(path):
            return str(path), "installed application"
    bundled = _playwright_chromium()
    if bundled:
        return str(bundled), "downloaded by Playwright"
    return None, f"no Chromium-family browser found: {HOW_TO_GET_ONE}"


def install_debian_chromium() -> bool:
    """As root with apt-get (CI, a container): install Debian's chromium. Whether it was installed."""
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    print("installing Debian's chromium for the browser tests with apt-get (about 30 s, ~120 MB)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"])
    return all(subprocess.run(step, env=env).returncode == 0 for step in steps)


def main(argv: list[str]) -> int:
    path, how = find_browser()
    if path is None and "--install" in argv and install_debian_chromium():
        path, how = find_browser()
    if path:
        print(f"browser tests will use {path} ({how})")
    else:
        print(f"browser tests will be skipped: {how}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
