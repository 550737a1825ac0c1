"""The class folder attacked the way a shared folder gets attacked (issue 36): links, FIFOs, hard links, deep or
wrong JSON and huge shares in place of `assignment.json` or a student's file.

Every link these tests plant points at a file the test made itself under `tmp_path`, never at a system file:
code that follows a link writes wherever it points, and these tests may run as root.
"""

from __future__ import annotations

import html
import json
import os
import re
import stat
import threading
import time

import pytest

from rlhf_course.feedback import class_numbers, class_view, classroom, safe_files
from rlhf_course.feedback.preference_store import PreferenceStore

SIMULATED_PAIRS = 5600  # notebook 03's, passed in so that these tests need no profile


def items(n: int, checkpoint: object = "sft") -> list[dict]:
    return [{"prompt": f"Write story {k}.", "answers": [f"story {k}a", f"story {k}b", f"story {k}c"],
             "checkpoint": checkpoint} for k in range(n)]


def an_assignment(students=("ana", "ben"), n: int = 4) -> dict:
    return classroom.make_assignment(items(n), list(students), rankings_each=n, everyone_ranks=n)


@pytest.fixture
def class_dir(tmp_path, monkeypatch):
    folder = tmp_path / "class"
    folder.mkdir()
    monkeypatch.setenv("RLHF_CLASS_DIR", str(folder))
    return folder


@pytest.fixture
def elsewhere(tmp_path):
    """A folder outside the class folder, standing for the instructor's home."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def finishes(function, seconds: float = 10.0):
    """`function()`'s result, or a test failure when it has not returned after `seconds` (a hang: a FIFO
    opened for reading waits for a writer for ever)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = function()
        except BaseException as error:  # re-raised in the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{function} still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def start_fails(class_dir, message: str) -> None:
    """A student's Start shows `message` in the widget, and nothing is read or written."""
    ui = classroom.student_widget(class_dir)
    finishes(lambda: ui.start("ana"))
    assert ui.store is None and ui.status.startswith("error: ") and message in ui.status, ui.status


def view_shows(class_dir, message: str) -> class_view.ClassView:
    view = finishes(lambda: class_view.ClassView(class_dir, simulated_pairs=SIMULATED_PAIRS))
    shown = view.status_label.value
    assert "error: " in shown and html.escape(message) in shown and view.summary is None, shown
    return view


def entries(folder) -> dict[str, str]:
    """Each name in `folder` and what it is, without following links."""
    return {path.name: "link" if path.is_symlink() else "folder" if path.is_dir() else
            "fifo" if stat.S_ISFIFO(os.lstat(path).st_mode) else "file" for path in folder.iterdir()}


# ---- row 1: assignment.json replaced by a link to a private file ----------------------------------------------


def test_row1_replacing_a_linked_assignment_renames_the_link_and_copies_nothing(class_dir, elsewhere):
    secret = elsewhere / "private.json"
    secret.write_text('{"instructor": "private notes"}\n', encoding="utf-8")
    secret.chmod(0o600)
    (class_dir / "assignment.json").symlink_to(secret)
    new = an_assignment()
    classroom.write_assignment(class_dir, new, replace=True)
    kinds = entries(class_dir)
    [aside] = [name for name in kinds if name.startswith("assignment.json.replaced-")]
    assert kinds == {"assignment.json": "file", aside: "link"}  # the link itself moved aside: nothing copied
    assert os.readlink(class_dir / aside) == str(secret)
    assert "private notes" not in (class_dir / "assignment.json").read_text(encoding="utf-8")
    assert secret.read_text(encoding="utf-8") == '{"instructor": "private notes"}\n'
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert classroom.load_assignment(class_dir) == new


def test_row1_a_linked_assignment_is_never_read(class_dir, elsewhere):
    target = elsewhere / "assignment.json"  # a valid assignment, but outside the class folder
    target.write_text(json.dumps(an_assignment()), encoding="utf-8")
    path = class_dir / "assignment.json"
    path.symlink_to(target)
    with pytest.raises(classroom.ClassroomError, match=f"{path} is a symbolic link.*not read; the instructor"):
        classroom.load_assignment(class_dir)
    start_fails(class_dir, "is a symbolic link")
    view_shows(class_dir, "is a symbolic link")
    with pytest.raises(classroom.ClassroomError, match="already exists"):  # a link counts, dangling or not
        classroom.write_assignment(class_dir, an_assignment())


# ---- row 3: a FIFO, or something endless -----------------------------------------------------------------------


def test_row3_a_fifo_never_blocks_start_the_view_or_a_new_assignment(class_dir):
    path = class_dir / "assignment.json"
    os.mkfifo(path)
    with pytest.raises(classroom.ClassroomError, match=f"{path} is a FIFO"):
        finishes(lambda: classroom.load_assignment(class_dir))
    start_fails(class_dir, "is a FIFO")
    view = view_shows(class_dir, "is a FIFO")
    assert finishes(view.refresh) is None
    finishes(lambda: classroom.write_assignment(class_dir, an_assignment(), replace=True))
    kinds = entries(class_dir)
    assert kinds.pop("assignment.json") == "file" and list(kinds.values()) == ["fifo"]  # set aside, unopened
    assert finishes(view.refresh).items == 4


def test_row3_a_link_to_a_fifo_elsewhere_is_refused_without_opening_it(class_dir, elsewhere):
    os.mkfifo(elsewhere / "pipe")
    (class_dir / "assignment.json").symlink_to(elsewhere / "pipe")
    start_fails(class_dir, "is a symbolic link")
    view_shows(class_dir, "is a symbolic link")


def test_row3_an_endless_or_huge_file_is_refused_by_its_size(class_dir):
    """A device such as /dev/zero never ends (a MemoryError before); a plain file is read up to a bound."""
    path = class_dir / "assignment.json"
    with open(path, "wb") as file:
        file.truncate(classroom.ASSIGNMENT_MAX_BYTES + 1)  # sparse: no disk used
    with pytest.raises(classroom.ClassroomError, match=f"{path} is 50.0 MB, more than the 50 MB it may be"):
        classroom.load_assignment(class_dir)
    start_fails(class_dir, "more than the 50 MB")


# ---- row 4: nesting, and ids that are not strings ------------------------------------------------------------


def test_row4_json_nested_100000_deep_is_one_clear_error(class_dir):
    path = class_dir / "assignment.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(classroom.ClassroomError, match=f"{path}: JSON nested too deeply to read"):
        classroom.load_assignment(class_dir)
    start_fails(class_dir, "nested too deeply")
    view_shows(class_dir, "nested too deeply")


def test_row4_nesting_python_can_parse_is_bounded_too(class_dir):
    assignment = an_assignment()
    assignment["notes"] = json.loads("[" * 500 + "]" * 500)
    (class_dir / "assignment.json").write_text(json.dumps(assignment), encoding="utf-8")
    with pytest.raises(classroom.ClassroomError, match='"notes" is nested more than 16 levels deep'):
        classroom.load_assignment(class_dir)
    looped: list = []
    looped.append(looped)  # no JSON file holds this, but a dict in memory can
    with pytest.raises(classroom.ClassroomError, match="not written: the assignment is nested more than 16"):
        classroom.write_assignment(class_dir, looped)


def test_row4_a_share_holding_a_list_is_refused_by_name(class_dir):
    assignment = an_assignment()
    assignment["students"]["ana"] = [["item-0000"]]
    path = class_dir / "assignment.json"
    path.write_text(json.dumps(assignment), encoding="utf-8")
    message = "student 'ana' is given ['item-0000'], which is not an item id (a string)"
    with pytest.raises(classroom.ClassroomError, match=re.escape(f"{path}: {message}; the instructor should")):
        classroom.load_assignment(class_dir)
    start_fails(class_dir, message)
    view_shows(class_dir, message)


@pytest.mark.parametrize("change, message", [
    (lambda a: a["items"][1].update(id=7), "item 1 of \"items\" has no \"id\" (a non-empty string): 7"),
    (lambda a: a["items"][1].update(id=a["items"][0]["id"]), "item 1 has the \"id\" 'item-0000' of item 0"),
    (lambda a: a["items"][1].update(prompt=a["items"][0]["prompt"], answers=a["items"][0]["answers"]),
     "item 1 ('item-0001') repeats item 0"),
    (lambda a: a["items"][1].update(answers=["one", 2]), "every answer must be a string"),
    (lambda a: a.update(students=["ana", "ben"]), '"students" must map each student'),
    (lambda a: a["students"].update(ana={"item-0000": 1}), "student 'ana' has no list of item ids"),
    (lambda a: a["students"]["ana"].append("item-0000"), "student 'ana' is given item 'item-0000' twice"),
    (lambda a: a.update(everyone=["item-9"]),
     '"everyone" (the items all students rank) is given item \'item-9\', which is not in "items"'),
    (lambda a: a["items"][0].update(prompt="\ud800"), 'in "items": a string contains'),
])
def test_every_part_of_an_assignment_is_checked(class_dir, change, message):
    assignment = an_assignment()
    change(assignment)
    path = class_dir / "assignment.json"
    with pytest.raises(classroom.ClassroomError, match=re.escape(f"{path} not written: ") + ".*" + re.escape(message)):
        classroom.write_assignment(class_dir, assignment)
    assert not path.exists()


# ---- row 5: a checkpoint that is not a name; a student name the store spells otherwise -----------------------


@pytest.mark.parametrize("checkpoint", [None, 5])
def test_row5_a_checkpoint_that_is_not_a_name_is_refused_before_any_submit(class_dir, checkpoint):
    assignment = an_assignment()
    assignment["items"][2]["checkpoint"] = checkpoint
    path = class_dir / "assignment.json"
    path.write_text(json.dumps(assignment), encoding="utf-8")
    message = f"item 2 ('item-0002'): \"checkpoint\" must be a string naming the checkpoint that wrote the " \
              f"answers (such as \"sft\"), not {checkpoint!r}"
    with pytest.raises(classroom.ClassroomError, match=re.escape(f"{path}: {message}; the instructor should")):
        classroom.load_assignment(class_dir)
    start_fails(class_dir, message)
    with pytest.raises(classroom.ClassroomError, match="not written: item 2"):
        classroom.write_assignment(class_dir, assignment, replace=True)
    bad = [items(1)[0], dict(items(2)[1], checkpoint=checkpoint)]
    with pytest.raises(classroom.ClassroomError, match="item 1: \"checkpoint\" must be a string"):
        classroom.make_assignment(bad, ["ana", "ben"], rankings_each=2, everyone_ranks=2)


def test_row5_a_student_key_with_a_space_is_the_name_the_store_writes(class_dir):
    assignment = an_assignment()
    assignment["students"] = {"ana ": assignment["students"]["ana"], "ben": assignment["students"]["ben"]}
    (class_dir / "assignment.json").write_text(json.dumps(assignment), encoding="utf-8")
    assert list(classroom.load_assignment(class_dir)["students"]) == ["ana", "ben"]
    ui = classroom.student_widget(class_dir)
    ui.start("ana")
    assert ui.store is not None and ui.total == 4, ui.status
    ui.rank([[0], [1], [2]])
    assert ui.submit() is not None, ui.status
    summary = class_numbers.class_summary(class_dir, simulated_pairs=SIMULATED_PAIRS)
    assert summary.student("ana").ranked == 1 and summary.student("ana").assigned == 4
    assignment["students"]["ana"] = assignment["students"]["ana "]
    with pytest.raises(classroom.ClassroomError, match=r"students 'ana ' and 'ana' are one name to the store"):
        classroom.write_assignment(class_dir, assignment, replace=True)


# ---- row 15: a big share is checked in linear time ----------------------------------------------------------


def test_row15_a_share_of_20000_ids_is_checked_in_well_under_a_second():
    """Before, each id of a share was counted with `list.count`: 10,000 ids took 1.3-2.4 s, 20,000 four times that."""
    n = 20_000
    many = [{"id": f"item-{k:05d}", "prompt": f"Write story {k}.", "answers": [f"a{k}", f"b{k}"], "checkpoint": ""}
            for k in range(n)]
    ids = [item["id"] for item in many]
    assignment = {"format": classroom.ASSIGNMENT_FORMAT, "items": many, "students": {"ana": ids, "ben": ids[:1]}}
    started = time.perf_counter()
    assert classroom.validate_assignment(assignment)["students"]["ana"] == ids
    seconds = time.perf_counter() - started
    print(f"a share of {n} ids checked in {seconds:.3f} s")
    assert seconds < 1.5


# ---- variants: a folder, a hard link, an empty file, a byte-order mark, not UTF-8, a swapped file ----------


def test_a_folder_named_assignment_json_is_refused_and_set_aside_whole(class_dir):
    path = class_dir / "assignment.json"
    path.mkdir()
    (path / "kept.txt").write_text("a student's file", encoding="utf-8")
    with pytest.raises(classroom.ClassroomError, match=f"{path} is a folder, not a plain file"):
        classroom.load_assignment(class_dir)
    classroom.write_assignment(class_dir, an_assignment(), replace=True)
    [aside] = [p for p in class_dir.iterdir() if p.name.startswith("assignment.json.replaced-")]
    assert (aside / "kept.txt").read_text(encoding="utf-8") == "a student's file"
    assert classroom.load_assignment(class_dir)["items"][0]["id"] == "item-0000"


def test_a_hard_linked_assignment_is_refused_and_replacing_it_copies_nothing(class_dir, elsewhere):
    other = elsewhere / "other.json"
    other.write_text(json.dumps(an_assignment()), encoding="utf-8")
    other.chmod(0o600)
    path = class_dir / "assignment.json"
    os.link(other, path)
    with pytest.raises(classroom.ClassroomError, match=f"{path} is a hard link .* not read"):
        classroom.load_assignment(class_dir)
    start_fails(class_dir, "is a hard link")
    before = other.read_bytes()
    classroom.write_assignment(class_dir, an_assignment(("cy", "dee")), replace=True)
    [aside] = [p for p in class_dir.iterdir() if p.name.startswith("assignment.json.replaced-")]
    assert os.path.samefile(aside, other) and other.read_bytes() == before  # renamed, not copied
    assert stat.S_IMODE(other.stat().st_mode) == 0o600 and os.stat(path).st_nlink == 1
    assert list(classroom.load_assignment(class_dir)["students"]) == ["cy", "dee"]


def test_an_empty_file_and_text_that_is_not_utf8_get_one_message(class_dir):
    path = class_dir / "assignment.json"
    path.write_bytes(b"")
    with pytest.raises(classroom.ClassroomError, match=f"{path} is empty; the instructor should write"):
        classroom.load_assignment(class_dir)
    path.write_bytes(b'{"format": "\xff"}')
    with pytest.raises(classroom.ClassroomError, match=f"{path}: not UTF-8 text \\(byte 13"):
        classroom.load_assignment(class_dir)


def test_a_byte_order_mark_at_the_start_is_allowed(class_dir):
    assignment = an_assignment()
    (class_dir / "assignment.json").write_text("\ufeff" + json.dumps(assignment), encoding="utf-8")
    assert classroom.load_assignment(class_dir) == assignment


def test_a_file_swapped_between_looking_and_opening_is_refused(class_dir, elsewhere, monkeypatch):
    """`lstat` saw one file, the open found another: someone put a file in its place in between."""
    classroom.write_assignment(class_dir, an_assignment())
    decoy = elsewhere / "decoy.json"
    decoy.write_text("{}", encoding="utf-8")
    real_lstat = os.lstat
    monkeypatch.setattr(os, "lstat", lambda path, *a, **k: real_lstat(decoy if str(path).endswith("assignment.json")
                                                                      else path, *a, **k))
    with pytest.raises(classroom.ClassroomError, match="changed while it was opened: another file was put"):
        classroom.load_assignment(class_dir)


def test_a_new_assignment_is_never_written_through_a_planted_temporary_name(class_dir, elsewhere, monkeypatch):
    """The temporary file's name is random, and even a guessed one is refused (O_EXCL | O_NOFOLLOW)."""
    target = elsewhere / "target"
    target.write_text("untouched", encoding="utf-8")
    monkeypatch.setattr(safe_files.uuid, "uuid4", lambda: type("U", (), {"hex": "guessed"})())
    (class_dir / ".assignment.json.guessed.tmp").symlink_to(target)
    with pytest.raises(classroom.ClassroomError, match="could not write .*assignment.json: File exists"):
        classroom.write_assignment(class_dir, an_assignment())
    assert target.read_text(encoding="utf-8") == "untouched"


# ---- a student's file planted as a link ----------------------------------------------------------------------


def test_a_link_in_a_students_name_never_gets_their_rankings(class_dir, elsewhere):
    classroom.write_assignment(class_dir, an_assignment())
    target = elsewhere / "notes.txt"
    target.write_text("the student's own file\n", encoding="utf-8")
    (class_dir / "ana.jsonl").symlink_to(target)
    start_fails(class_dir, f"{class_dir / 'ana.jsonl'} is a symbolic link")
    summary = class_numbers.class_summary(class_dir, simulated_pairs=SIMULATED_PAIRS)
    assert [(p.path.name, "symbolic link" in p.message) for p in summary.problems] == [("ana.jsonl", True)]
    assert summary.student("ana").ranked == 0
    assert target.read_text(encoding="utf-8") == "the student's own file\n"


def test_a_link_planted_after_start_refuses_the_submit_and_keeps_the_places(class_dir, elsewhere):
    classroom.write_assignment(class_dir, an_assignment())
    ui = classroom.student_widget(class_dir, annotator="ana")
    target = elsewhere / "notes.txt"
    target.write_text("", encoding="utf-8")
    (class_dir / "ana.jsonl").symlink_to(target)  # ana has no file yet: anyone could put this name there
    ui.rank([[1], [0], [2]])
    assert ui.submit() is None and "is a symbolic link" in ui.status and ui.places == [1, 0, 2]
    assert ui.skip() is None and "is a symbolic link" in ui.status
    ui.undo()
    assert "is a symbolic link" in ui.status and target.read_text(encoding="utf-8") == ""


def test_a_hard_linked_student_file_is_a_problem_and_not_counted(class_dir, elsewhere):
    classroom.write_assignment(class_dir, an_assignment())
    store = PreferenceStore(elsewhere, "ana")
    item = classroom.student_items(class_dir, "ana")[0]
    store.submit(item["prompt"], item["answers"], [[0], [1], [2]], "sft")
    os.link(store.path, class_dir / "ana.jsonl")
    summary = class_numbers.class_summary(class_dir, simulated_pairs=SIMULATED_PAIRS)
    assert summary.rankings == 0 and "is a hard link" in summary.problems[0].message


# ---- the view and its timer live on after an error -----------------------------------------------------------


def test_the_timer_keeps_running_after_a_bad_assignment_and_shows_fresh_numbers_once_it_is_fixed(class_dir):
    assignment = an_assignment()
    classroom.write_assignment(class_dir, assignment)
    view = class_view.ClassView(class_dir, every_s=0.02, simulated_pairs=SIMULATED_PAIRS)
    assert view.summary.rankings == 0
    broken = dict(assignment, students={"ana": [["item-0000"]], "ben": ["item-0000"]})
    (class_dir / "assignment.json").write_text(json.dumps(broken), encoding="utf-8")
    view.auto_box.value = True
    try:
        wait_until(lambda: "error: " in view.status_label.value)
        assert "which is not an item id" in view.status_label.value and "the numbers below are from" in \
            view.status_label.value
        time.sleep(0.1)  # several more ticks, each failing
        assert view._timer.is_alive() and view.auto_box.value
        classroom.write_assignment(class_dir, assignment, replace=True)
        item = assignment["items"][0]
        PreferenceStore(class_dir, "ana").submit(item["prompt"], item["answers"], [[0], [1], [2]], "sft")
        wait_until(lambda: view.summary.rankings == 1 and "error: " not in view.status_label.value)
    finally:
        view.auto_box.value = False
    assert not view._timer.is_alive() and "read at" in view.status_label.value


def test_an_unexpected_error_is_shown_and_the_next_refresh_recovers(class_dir, monkeypatch):
    classroom.write_assignment(class_dir, an_assignment())
    view = class_view.ClassView(class_dir, simulated_pairs=SIMULATED_PAIRS)
    real = class_numbers.class_summary

    def broken(*args, **kwargs):
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(class_view, "class_summary", broken)
    assert view.refresh() is None
    assert "error: TypeError: unhashable type" in view.status_label.value and view.summary.items == 4
    monkeypatch.setattr(class_view, "class_summary", real)
    assert view.refresh().items == 4 and "error: " not in view.status_label.value
