"""The set-up and the browser finder: one clear line where a student's machine lacks something, never a
failed set-up for want of a browser."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import browser_finder  # noqa: E402


def test_an_old_python_gets_one_line_saying_what_to_do(tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.version_info = (3, 9, 18, 'final', 0)\n",
                                               encoding="utf-8")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "setup.py")], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs Python 3.10 or newer" in lines[0], result.stderr


def test_no_browser_means_a_reason_not_a_failure(monkeypatch, capsys):
    monkeypatch.delenv("RLHF_BROWSER", raising=False)
    monkeypatch.setattr(browser_finder.shutil, "which", lambda name: None)
    monkeypatch.setattr(browser_finder, "_installed_apps", lambda: [])
    monkeypatch.setattr(browser_finder, "_playwright_chromium", lambda: None)
    monkeypatch.setattr(browser_finder, "install_debian_chromium", lambda: False)  # not root, or no apt-get
    path, how = browser_finder.find_browser()
    assert path is None and "playwright install chromium" in how
    assert browser_finder.main(["--install"]) == 0
    assert capsys.readouterr().out.startswith("browser tests will be skipped: no Chromium-family browser found")


def test_a_browser_named_by_the_user_is_used_or_refused_with_the_reason(tmp_path, monkeypatch):
    browser = tmp_path / "my-chrome"
    browser.write_text("#!/bin/sh\n", encoding="utf-8")
    monkeypatch.setenv("RLHF_BROWSER", str(browser))
    path, how = browser_finder.find_browser()
    assert path is None and "not an executable file" in how  # not executable yet
    browser.chmod(0o755)
    assert browser_finder.find_browser() == (str(browser), "RLHF_BROWSER")


def test_a_browser_on_the_path_is_found(tmp_path, monkeypatch):
    monkeypatch.delenv("RLHF_BROWSER", raising=False)
    browser = tmp_path / "google-chrome"
    browser.write_text("#!/bin/sh\n", encoding="utf-8")
    browser.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert browser_finder.find_browser() == (str(browser), "on the PATH")


def test_the_environment_python_is_where_windows_puts_it(monkeypatch):
    """`py scripts\\setup.py` on Windows: the venv's interpreter is .venv\\Scripts\\python.exe, not .venv/bin/python."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("course_setup", ROOT / "scripts" / "setup.py")
    course_setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(course_setup)

    assert course_setup.venv_python().endswith(os.path.join(".venv", "bin", "python"))
    monkeypatch.setattr(course_setup.os, "name", "nt")
    assert course_setup.venv_python().endswith(os.path.join(".venv", "Scripts", "python.exe"))
