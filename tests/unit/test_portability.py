"""What other machines do differently: Windows' default text encoding (cp1252).

(No `fcntl`: tests/unit/test_store_locking.py; the runner's kernels without Unix sockets: tests/unit/test_cli.py.)
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "rlhf_course"
TEXT_IO = {"open", "read_text", "write_text", "NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile"}


def _mode(call: ast.Call) -> str:
    """The mode argument of an `open`-like call when it is a literal ('' when absent or not a literal)."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    position = 0 if name in {"NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile"} or (
        isinstance(call.func, ast.Attribute) and name == "open") else 1
    for keyword in call.keywords:
        if keyword.arg == "mode" and isinstance(keyword.value, ast.Constant):
            return str(keyword.value.value)
    if len(call.args) > position and isinstance(call.args[position], ast.Constant):
        return str(call.args[position].value)
    return "w+b" if name in {"NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile"} else "r"


def text_io_without_encoding(source: str) -> list[int]:
    """Line numbers of text-mode `open()`, `Path.open/read_text/write_text` and temporary files that name no
    encoding (binary modes, `os.open` and `read_bytes` are not text)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name not in TEXT_IO or (isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "os"):
            continue
        if name not in {"read_text", "write_text"} and "b" in _mode(node):
            continue
        if not any(keyword.arg == "encoding" for keyword in node.keywords):
            lines.append(node.lineno)
    return lines


def test_the_finder_sees_what_it_looks_for():
    """The static check below finds each form of text I/O that names no encoding, and spares the rest."""
    bad = ('open("a")\nopen("a", "w")\nPath("a").read_text()\nPath("a").write_text("x")\nPath("a").open()\n'
           'tempfile.NamedTemporaryFile("w")\n')
    good = ('open("a", encoding="utf-8")\nopen("a", "rb")\nos.open("a", 0)\nPath("a").read_bytes()\n'
            'Path("a").open("wb")\ntempfile.NamedTemporaryFile()\nPath("a").read_text(encoding="utf-8")\n')
    assert text_io_without_encoding(bad) == [1, 2, 3, 4, 5, 6]
    assert text_io_without_encoding(good) == []


def test_every_text_file_of_the_package_is_utf8():
    """On Windows the default encoding is cp1252: a demonstration or a name with 'é' or '→' would be misread."""
    found = {str(path.relative_to(PACKAGE.parent)): lines for path in sorted(PACKAGE.rglob("*.py"))
             if (lines := text_io_without_encoding(path.read_text(encoding="utf-8")))}
    assert not found, f"text I/O without encoding='utf-8' (file: lines): {found}"


# The package's own file I/O, run under `-X warn_default_encoding` with its EncodingWarnings made errors: what
# the static check above reads, seen at run time (Python >= 3.10 warns where the default encoding is used).
ROUND_TRIP = r'''
import warnings
warnings.filterwarnings("error", category=EncodingWarning, module=r"rlhf_course(\.|$)")
import torch
from rlhf_course import config, world
from rlhf_course.course import artifacts, experiments, report
from rlhf_course.engine import models
from rlhf_course.feedback import classroom, preference_loading, preference_store
from rlhf_course.world import tokenizer
from rlhf_course.config import ModelConfig

profile = config.get_profile("tiny")
assert world.load_hand_written_demonstrations()
report.record_phase("tiny", "probe", {"name": "Zoë → ✓"})
assert report.read_report("tiny")["phases"]["probe"]["name"] == "Zoë → ✓"
items = [{"prompt": "Écris une histoire", "answers": ["a → b", "ça"], "checkpoint": "sft"}]
artifacts.save_candidates("tiny", items)
assert artifacts.load_candidates("tiny") == items
tok = tokenizer.train_tokenizer([d["text"] for d in world.make_corpus(200, seed=0)], vocab_size=300)
model = models.build_model(ModelConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                                       max_seq_len=64), tok)
models.save_checkpoint(model, tok, "sft", profile, {"note": "naïve"}, 1.0)
assert models.read_meta("sft", "tiny")["metrics"]["note"] == "naïve"
models.load_checkpoint("sft", "tiny")
assert experiments.cached("tiny", "probe", lambda: {"value": "é"})["value"] == "é"
store = preference_store.PreferenceStore(STORE, "zoë")
store.submit("Écris", ["a", "b"], [[1], [0]], checkpoint="sft")
pairs, problems = preference_loading.load_preferences(STORE)
assert len(pairs) == 1 and not problems
students = ["zoë", "ben"]
ranked = [{"prompt": f"p{i} é", "answers": ["x", "y"], "checkpoint": "sft"} for i in range(6)]
classroom.write_assignment(CLASS, classroom.make_assignment(ranked, students, rankings_each=2, everyone_ranks=1,
                                                           raters_per_item=2))
assert classroom.load_assignment(CLASS)
print("round trip ok")
'''


def test_the_package_reads_and_writes_utf8_when_the_default_is_not(tmp_path):
    script = f"STORE = {str(tmp_path / 'prefs')!r}\nCLASS = {str(tmp_path / 'class')!r}\n" + ROUND_TRIP
    env = {**os.environ, "RLHF_RUNS_DIR": str(tmp_path / "runs"), "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run([sys.executable, "-X", "warn_default_encoding", "-c", script], env=env,
                            capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "round trip ok" in result.stdout
