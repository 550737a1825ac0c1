"""The store's lock: `filelock.FileLock` on `<name>.jsonl.lock`, with `fcntl` and without it (as on Windows).

Without `fcntl` on a system that is not Windows, `filelock.FileLock` is `filelock.SoftFileLock`: a marker file
made with O_CREAT | O_EXCL and removed on release (on Windows itself it is `WindowsFileLock`, LockFileEx).
A sitecustomize.py that sets `sys.modules["fcntl"] = None` makes `import fcntl` fail in a subprocess, so
these tests run the store's guarantees with the lock that fallback gives.

What shows the lock works (and not merely that O_APPEND writes do not interleave): several processes submit
the same item at once, each with the check-then-write window widened to 50 ms, and exactly one may win.
Without mutual exclusion every one of them passes the duplicate check before any has written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import filelock
import pytest

from rlhf_course.feedback import preference_store
from rlhf_course.feedback.preference_loading import load_preferences
from rlhf_course.feedback.preference_store import PreferenceStore, PreferenceStoreError

WITHOUT_FCNTL = "import sys\nsys.modules['fcntl'] = None  # as on Windows: `import fcntl` raises ImportError\n"

WRITER = """
import json, sys, time
from pathlib import Path
import filelock
from rlhf_course.feedback.preference_store import PreferenceStore
folder, go, worker, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
slow_write = PreferenceStore._write_lines
def widened(self, fd, records):  # the lock is held from the duplicate check to the fsync: make that 50 ms
    time.sleep(0.05)
    slow_write(self, fd, records)
PreferenceStore._write_lines = widened
store = PreferenceStore(folder, "shared")
(go.parent / f"ready-{worker}").touch()
while not go.exists():
    time.sleep(0.002)
try:  # every worker submits the same item at the same moment: the lock lets exactly one in
    won = [store.submit("the shared prompt", ["a", "b"], [[0], [1]], "sft")["id"]]
except ValueError:
    won = []
PreferenceStore._write_lines = slow_write
ids = [store.submit(f"prompt {worker} {k}", ["x" * (k % 50 + 1), "y" * 300], [[1], [0]], "sft")["id"]
       for k in range(n)]
print(json.dumps({"lock": filelock.FileLock.__name__, "won": won, "ids": ids}))
"""


def without_fcntl_env(tmp_path) -> dict:
    """The environment of a subprocess in which `import fcntl` fails."""
    site = tmp_path / "no-fcntl"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(WITHOUT_FCNTL, encoding="utf-8")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def run_writers(tmp_path, env: dict, n_workers: int = 4, n_each: int = 25) -> list[dict]:
    """Start `n_workers` writer processes on one file, let them go at once, and return what each printed."""
    folder, go = tmp_path / "prefs", tmp_path / "go"
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(go), str(w), str(n_each)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8")
                 for w in range(n_workers)]
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("ready-*"))) < n_workers and time.monotonic() < deadline:
            time.sleep(0.02)
        go.touch()
        results = []
        for process in processes:
            out, err = process.communicate(timeout=180)
            assert process.returncode == 0, err[-3000:]
            results.append(json.loads(out))
    finally:
        for process in processes:  # only the processes this test started, if a check above failed
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


@pytest.mark.parametrize("lock", ["native", "no fcntl"])
def test_writers_in_several_processes_take_turns_and_lose_nothing(tmp_path, lock):
    env = without_fcntl_env(tmp_path) if lock == "no fcntl" else dict(os.environ)
    started = time.perf_counter()
    results = run_writers(tmp_path, env)
    seconds = time.perf_counter() - started
    expected_lock = "SoftFileLock" if lock == "no fcntl" else filelock.FileLock.__name__
    assert {result["lock"] for result in results} == {expected_lock}
    winners = [record_id for result in results for record_id in result["won"]]
    acknowledged = winners + [record_id for result in results for record_id in result["ids"]]
    path = tmp_path / "prefs" / "shared.jsonl"
    on_disk = [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]
    print(f"{lock} ({expected_lock}): {len(acknowledged)} acknowledged, {len(on_disk)} on disk, "
          f"{len(winners)} of {len(results)} won the shared item, {seconds:.1f} s")
    assert len(winners) == 1  # the duplicate check and the write are one step for each process
    assert sorted(on_disk) == sorted(acknowledged) and len(set(on_disk)) == len(on_disk) == 4 * 25 + 1
    dataset, problems = load_preferences(path)
    assert problems == [] and len(dataset) == len(acknowledged)
    if lock == "no fcntl":
        assert not (tmp_path / "prefs" / "shared.jsonl.lock").exists()  # the soft lock's marker is gone again


def test_the_course_modules_import_and_the_store_locks_without_fcntl(tmp_path):
    script = ("import importlib, sys, warnings\n"
              "warnings.simplefilter('ignore')\n"
              "try:\n    import fcntl\nexcept ImportError:\n    pass\nelse:\n    sys.exit('fcntl is still there')\n"
              "for name in ('preference_store', 'widgets', 'classroom'):\n"
              "    importlib.import_module('rlhf_course.feedback.' + name)\n"
              "import filelock\n"
              "from rlhf_course.feedback.preference_store import PreferenceStore\n"
              f"store = PreferenceStore({str(tmp_path / 'prefs')!r}, 'ana')\n"
              "store.submit('p', ['a', 'b'], [[0], [1]], checkpoint='sft')\n"
              "print(filelock.FileLock.__name__, len(store.records()))\n")
    result = subprocess.run([sys.executable, "-c", script], env=without_fcntl_env(tmp_path), capture_output=True,
                            encoding="utf-8", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["SoftFileLock", "1"]


def test_the_lock_file_sits_beside_the_preferences_and_no_loader_reads_it(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    store.submit("p", ["a", "b"], [[0], [1]], "sft")
    assert store.lock_path == tmp_path / "ana.jsonl.lock"
    names = {p.name for p in tmp_path.iterdir()}  # without fcntl, filelock's soft lock removes its file on release
    assert "ana.jsonl" in names and names <= {"ana.jsonl", "ana.jsonl.lock"}
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 1


def test_a_lock_held_too_long_is_one_clear_error_and_nothing_is_written(tmp_path, monkeypatch):
    store = PreferenceStore(tmp_path, "ana")
    kept = store.submit("p", ["a", "b"], [[0], [1]], "sft")
    monkeypatch.setattr(preference_store, "LOCK_TIMEOUT_S", 0.3)
    held, release = threading.Event(), threading.Event()

    def hold():  # another writer that hangs while holding the lock
        with filelock.FileLock(store.lock_path):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(PreferenceStoreError, match=r"ana\.jsonl\.lock has been locked by another process"):
            store.submit("q", ["a", "b"], [[0], [1]], "sft")
    finally:
        release.set()
        holder.join(10)
    assert store.records() == [kept]
    store.submit("q", ["a", "b"], [[0], [1]], "sft")  # the lock is free again: the same ranking goes in
    assert len(store.records()) == 2
