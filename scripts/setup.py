"""Set up the course on this machine: Linux, macOS or Windows, as an ordinary user. Safe to run again.

    python3 scripts/setup.py            # Linux, macOS (or: bash scripts/setup.sh)
    py scripts\\setup.py                 # Windows (PowerShell or cmd)
    python3 scripts/setup.py --tests    # also look for a browser for the browser tests

It makes a virtual environment `.venv` with the exact versions of `requirements.txt` and the course package in
editable mode. It installs Python packages only: no system package, no root, no password. With `--tests` it
looks for a Chromium-family browser for the browser tests (`tests/browser_finder.py`); only where it runs as
root on a machine with apt-get (CI) does it install Debian's chromium. Without a browser those tests are
skipped, each saying why; the set-up never fails for want of one.
"""

# Plain syntax on purpose: an old Python must get as far as the version check below and say what to do.
from __future__ import print_function

import os
import subprocess
import sys

LOWEST_PYTHON = (3, 10)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")


def fail(message):
    print("setup: " + message, file=sys.stderr)
    sys.exit(1)


def venv_python():
    """The virtual environment's interpreter: `.venv/bin/python`, or `.venv\\Scripts\\python.exe` on Windows."""
    if os.name == "nt":
        return os.path.join(VENV, "Scripts", "python.exe")
    return os.path.join(VENV, "bin", "python")


def run(*command):
    """Run a command; stop the set-up with one line if it fails (its own output says the details)."""
    code = subprocess.call(list(command), cwd=ROOT)
    if code != 0:
        fail("`%s` failed (exit status %d); see its output above" % (" ".join(command), code))


def check_python():
    if sys.version_info[:2] < LOWEST_PYTHON:
        fail("the course needs Python %d.%d or newer; this is Python %s (%s). Install a newer one "
             "(python.org, your package manager, or `brew install python` on macOS) and run this script with it."
             % (LOWEST_PYTHON + (sys.version.split()[0], sys.executable)))


def make_venv():
    python = venv_python()
    if os.path.exists(python):
        return python
    print("setup: creating the virtual environment .venv")
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401  (Debian and Ubuntu ship it separately: python3-venv)
    except ImportError:
        fail("this Python cannot create virtual environments: install its venv module "
             "(on Debian or Ubuntu: the package python3-venv) or use another Python")
    run(sys.executable, "-m", "venv", VENV)
    return python


def without_a_writable_home():
    """A read-only home (some lab machines): pip would warn at every call that its cache is off; say it once."""
    home = os.path.expanduser("~")
    if not os.access(home, os.W_OK) and "PIP_NO_CACHE_DIR" not in os.environ:
        os.environ["PIP_NO_CACHE_DIR"] = "1"
        print("setup: %s is read-only, so pip runs without its download cache" % home)


def install(python):
    run(python, "-m", "pip", "install", "-q", "--upgrade", "pip")
    run(python, "-m", "pip", "install", "-q", "-r", "requirements.txt")
    # Editable: the notebooks import the package from this folder, so a change to it is seen at once.
    has_setuptools = subprocess.call([python, "-c", "import setuptools"], stderr=subprocess.DEVNULL) == 0
    isolation = ["--no-build-isolation"] if has_setuptools else []  # without setuptools pip fetches it to build
    run(python, "-m", "pip", "install", "-q", "--no-deps", *(isolation + ["-e", "."]))


def allow_jupyter_as_root():
    """Jupyter refuses to start as root unless told (CI and many cloud machines run as root). The setting lives
    in the virtual environment only."""
    if os.name != "posix" or os.geteuid() != 0:
        return
    folder = os.path.join(VENV, "etc", "jupyter")
    if not os.path.isdir(folder):
        os.makedirs(folder)
    with open(os.path.join(folder, "jupyter_server_config.json"), "w", encoding="utf-8") as file:
        file.write('{"ServerApp": {"allow_root": true}}\n')


def main(argv):
    check_python()
    python = make_venv()
    without_a_writable_home()
    install(python)
    allow_jupyter_as_root()
    if "--tests" in argv:
        # The browser tests' business, never a reason for the set-up to fail (the finder always exits 0).
        subprocess.call([python, os.path.join("tests", "browser_finder.py"), "--install"], cwd=ROOT)
    report = ("import torch, transformers; print('setup done: torch', torch.__version__, '| transformers', "
              "transformers.__version__, '| CUDA', torch.cuda.is_available())")
    run(python, "-c", report)
    run_command = (".venv\\Scripts\\python" if os.name == "nt" else ".venv/bin/python") + " -m rlhf_course run"
    print("next: `%s` runs the whole course headless; `jupyter lab notebooks/` from the environment opens it"
          % run_command)


if __name__ == "__main__":
    main(sys.argv[1:])
