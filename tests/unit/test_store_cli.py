"""Issue 36, rows 14-15: `prefs check` prints one line per file and per problem whatever the names hold, and
checks text files without importing torch (which took about 5 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rlhf_course.feedback.preference_loading import Problem, check_preference_files, printable
from rlhf_course.feedback.preference_store import PreferenceStore

PROMPT = "Write a happy story about a fox named Lily in the forest."
ANSWERS = ["answer a", "answer b"]
FAKE = "\nfake.jsonl: 99 rankings, 0 skipped, 0 undone, 99 pairs, 0 problem(s)\nOK\n"


def test_a_file_name_with_line_breaks_cannot_print_lines_of_its_own(tmp_path, capsys):
    PreferenceStore(tmp_path, "ana").submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    odd = tmp_path / f"ben{FAKE}\x1b[2J.jsonl"  # a newline, a fake report and a terminal escape in one name
    odd.write_bytes(b"{not json\n")
    assert check_preference_files([tmp_path]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "OK" not in lines and not any(line.startswith("fake.jsonl") for line in lines)
    assert "\x1b" not in out
    assert len(lines) == 4  # ana's summary, ben's summary, ben's problem, "1 problem(s)"
    assert lines[-1] == "1 problem(s)" and "ben\\nfake.jsonl: 99 rankings" in lines[1] and "\\x1b[2J" in lines[1]
    assert lines[2].endswith(".jsonl:1: not valid JSON (Expecting property name enclosed in double quotes at column 2)")


def test_printable_escapes_what_is_not_printable_and_keeps_every_script():
    assert printable("ana\nOK\r\x1b\u2028\udcff") == "ana\\nOK\\r\\x1b\\u2028\\udcff"
    assert printable("प्रिया Straße ✓") == "प्रिया Straße ✓"
    assert str(Problem(Path("a\nb.jsonl"), 3, "bad\nline")) == "a\\nb.jsonl:3: bad\\nline"


def run_prefs_check(path) -> tuple[int, bool, str]:
    """`python -m rlhf_course prefs check PATH` in a fresh interpreter: (exit status, torch imported?, output)."""
    script = ("import io, runpy, sys, contextlib\n"
              f"sys.argv = ['rlhf_course', 'prefs', 'check', {str(path)!r}]\n"
              "out = io.StringIO()\n"
              "with contextlib.redirect_stdout(out):\n"
              "    try:\n"
              "        runpy.run_module('rlhf_course', run_name='__main__', alter_sys=True)\n"
              "    except SystemExit as exit:\n"
              "        status = exit.code\n"
              "print(json.dumps([status, 'torch' in sys.modules, out.getvalue()]))\n")
    result = subprocess.run([sys.executable, "-c", "import json\n" + script], capture_output=True, encoding="utf-8",
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return tuple(json.loads(result.stdout))


def test_prefs_check_does_not_import_torch(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    store.submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    status, torch_imported, out = run_prefs_check(store.path)
    assert (status, torch_imported) == (0, False)
    assert out == f"{store.path}: 1 rankings, 0 skipped, 0 undone, 1 pairs, 0 problem(s)\nOK\n"
    with open(store.path, "ab") as file:
        file.write(b"oops\n")
    status, torch_imported, out = run_prefs_check(tmp_path)
    assert (status, torch_imported) == (1, False) and f"{store.path}:2: not valid JSON" in out


def test_python_m_rlhf_course_prefs_check(tmp_path):
    PreferenceStore(tmp_path, "ana").submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    result = subprocess.run([sys.executable, "-m", "rlhf_course", "prefs", "check", str(tmp_path)],
                            capture_output=True, encoding="utf-8", timeout=120)
    assert result.returncode == 0 and result.stdout.endswith("OK\n")
    result = subprocess.run([sys.executable, "-m", "rlhf_course", "prefs", "check"], capture_output=True,
                            encoding="utf-8", timeout=120)
    assert result.returncode == 2 and "the following arguments are required: paths" in result.stderr


def test_a_console_that_cannot_show_a_name_gets_escapes_not_a_crash(tmp_path):
    PreferenceStore(tmp_path, "प्रिया").submit(PROMPT, ANSWERS, [[0], [1]], "sft")
    result = subprocess.run([sys.executable, "-m", "rlhf_course", "prefs", "check", str(tmp_path)],
                            capture_output=True, encoding="ascii", timeout=120,
                            env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "\\u092a\\u094d\\u0930\\u093f\\u092f\\u093e.jsonl: 1 rankings" in result.stdout
