"""Headless tests of the ranking widget: the programmatic API clicks the same buttons a person clicks."""

from __future__ import annotations

import html
import json
import os
import re

import ipywidgets
import pytest

from rlhf_course import world
from rlhf_course.feedback import widgets
from rlhf_course.feedback.rankings import answer_letter
from rlhf_course.feedback.widgets import RankingWidget, place_name

ITEMS = [
    {"prompt": f"Write a story number {k}.", "answers": [f"story {k}{letter}" for letter in "abc"], "checkpoint": "sft"}
    for k in range(3)
]


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


@pytest.fixture
def ui(tmp_path):
    ui = RankingWidget(ITEMS, store_folder=tmp_path / "prefs")
    ui.start("ana")
    return ui


def test_asks_for_a_name_first(tmp_path):
    ui = RankingWidget(ITEMS, store_folder=tmp_path)
    assert ui.ranking_area.layout.display == "none" and ui.store is None
    ui.start("../x")
    assert ui.status.startswith("error: annotator name '../x' is not allowed")
    assert ui.store is None and list(tmp_path.iterdir()) == []
    ui.start("ana")
    assert ui.store.path == tmp_path / "ana.jsonl"
    assert ui.login_row.layout.display == "none" and ui.ranking_area.layout.display is None
    assert "annotator: <b>ana</b>" in ui.progress_label.value and "0 / 3 done" in ui.progress_label.value


def test_every_element_has_its_css_class(ui):
    def classes(widget):
        return set(widget._dom_classes)

    assert "rlhf-annotator" in classes(ui.name_box) and "rlhf-start" in classes(ui.start_button)
    assert "rlhf-prompt" in classes(ui.prompt_label) and "rlhf-progress" in classes(ui.progress_label)
    assert {"rlhf-submit", "rlhf-skip", "rlhf-undo", "rlhf-status"} <= (
        classes(ui.submit_button) | classes(ui.skip_button) | classes(ui.undo_button) | classes(ui.status_label)
    )
    assert [classes(label) for label in ui.answer_labels] == [{f"rlhf-answer-{i}"} for i in range(3)]
    assert "rlhf-rank-2-1" in classes(ui.rank_buttons[2][1])
    assert "application/vnd.jupyter.widget-view+json" in ui._repr_mimebundle_()


def test_rubric_is_the_gold_judges_list_closed_until_clicked(tmp_path):
    ui = RankingWidget(ITEMS, store_folder=tmp_path)
    panel = ui.rubric_panel
    assert panel in ui.widget.children and "rlhf-rubric" in panel._dom_classes
    assert panel.selected_index is None and panel.titles == (widgets.RUBRIC_TITLE,)
    text = panel.children[0].value
    assert text == widgets.rubric_html()
    for _, weight, sentence in world.gold_rubric():
        assert f"<b>{round(weight * 100)}%</b> · {html.escape(sentence)}" in text
    assert sum(round(weight * 100) for weight in world.GOLD_WEIGHTS.values()) == 100
    plain = RankingWidget(ITEMS, store_folder=tmp_path, rubric=False)
    assert plain.rubric_panel is None and not any(
        isinstance(child, ipywidgets.Accordion) for child in plain.widget.children)


def test_rank_submit_writes_one_record_and_moves_on(ui):
    ui.rank([[2], [0], [1]])
    assert [b.button_style for b in ui.rank_buttons[2]] == ["info", "", ""]  # what the person sees
    record = ui.submit()
    assert ui.status == f"saved #1 to {ui.store.path}"
    [saved] = lines(ui.store.path)
    assert saved == record
    assert saved["ranking"] == [[2], [0], [1]] and saved["prompt"] == ITEMS[0]["prompt"]
    assert saved["annotator"] == "ana" and saved["checkpoint"] == "sft" and saved["source"] == "human"
    assert (ui.done, ui.total, ui.current) == (1, 3, 1)
    assert "1 / 3 done" in ui.progress_label.value and ITEMS[1]["prompt"] in ui.prompt_label.value


def test_clicking_place_buttons_with_a_tie(ui):
    ui.set_rank(0, 1)
    ui.set_rank(1, 0)
    ui.set_rank(2, 1)  # same place as answer 0: a tie
    ui.rank_buttons[0][2].click()  # a person changes their mind: answer 0 to 3rd
    ui.rank_buttons[0][1].click()  # … and back
    ui.submit()
    assert lines(ui.store.path)[0]["ranking"] == [[1], [0, 2]]


def test_incomplete_ranking_shows_an_error_and_writes_nothing(ui):
    ui.rank([[1], [0]])  # answer C has no place
    assert ui.submit() is None
    assert ui.status == "error: answer C has no place yet: give every answer a place (equal places = a tie)"
    assert "b00020" in ui.status_label.value  # shown in red
    assert not ui.store.path.exists() and ui.done == 0 and ui.current == 0
    assert ui.places == [1, 0, None]  # the places stay on screen
    ui.set_rank(2, 2)
    assert ui.submit()["ranking"] == [[1], [0], [2]]


def test_skip_then_undo_then_finish(ui):
    ui.rank([[0], [1], [2]])
    ui.submit()
    ui.skip()
    assert ui.status.startswith("skipped item 2") and ui.current == 2 and ui.done == 2
    ui.undo()
    assert ui.status == "undid the skip of item 2; it is back on screen"
    assert ui.current == 1 and ui.done == 1
    ui.undo()  # now the ranking of item 1: it comes back with its places
    assert ui.current == 0 and ui.places == [0, 1, 2] and ui.done == 0
    ui.submit()
    ui.rank([[1], [0, 2]])
    ui.submit()
    ui.skip()
    assert ui.done == 3 and ui.current is None and ui.submit_button.disabled
    assert "All items are done" in ui.prompt_label.value
    rows = lines(ui.store.path)
    assert [("undo" in r, "skipped" in r, r.get("ranking")) for r in rows] == [
        (False, False, [[0], [1], [2]]),
        (False, True, None),
        (True, False, None),
        (True, False, None),
        (False, False, [[0], [1], [2]]),
        (False, False, [[1], [0, 2]]),
        (False, True, None),
    ]
    assert ui.store.records()[-1]["skipped"] is True and len(ui.store.records()) == 3


def test_undo_with_nothing_to_undo(ui):
    ui.undo()
    assert ui.status == "nothing to undo"


def test_buttons_clicked_before_start_change_nothing(tmp_path):
    """The buttons are hidden before Start, but code (or a stale front end) can click them."""
    ui = RankingWidget(ITEMS, store_folder=tmp_path)
    for click, action in ((ui.undo, "undo"), (ui.submit, "submit"), (ui.skip, "skip")):
        assert click() is None
        assert ui.status == f"error: nothing to {action} yet: type your name and press Start first"
    assert ui.store is None and list(tmp_path.iterdir()) == []
    ui.start("ana")
    ui.undo()
    assert ui.status == "nothing to undo"


def test_answer_letters_and_place_names_go_on_past_26():
    assert [answer_letter(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == [
        "A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]
    with pytest.raises(ValueError, match="integers >= 0"):
        answer_letter(-1)
    assert [place_name(p) for p in (0, 1, 2, 3, 10, 11, 12, 20, 21, 22, 23, 100, 110)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "24th", "101st", "111th"]


def test_more_than_26_answers(tmp_path):
    answers = [f"story {k}" for k in range(30)]
    ui = RankingWidget([{"prompt": "Write a story.", "answers": answers}], store_folder=tmp_path, annotator="ana")
    assert len(ui.rank_buttons) == 30 and {len(row) for row in ui.rank_buttons} == {30}
    assert ui.answer_labels[25].value.startswith("<b>Z.</b>") and ui.answer_labels[26].value.startswith("<b>AA.</b>")
    assert [b.description for b in ui.rank_buttons[0][25:28]] == ["26th", "27th", "28th"]
    ui.rank([[k] for k in range(29)])  # the 30th answer, AD, has no place yet
    assert ui.submit() is None and ui.status.startswith("error: answer AD has no place yet")
    ui.set_rank(29, 29)
    assert ui.submit()["ranking"] == [[k] for k in range(30)] and ui.done == 1


def test_restarted_widget_carries_on_where_it_stopped(ui, tmp_path):
    ui.rank([[0], [1], [2]])
    ui.submit()
    again = RankingWidget(ITEMS, store_folder=tmp_path / "prefs", annotator="ana")
    assert again.current == 1 and again.done == 1
    assert again.status.startswith("welcome back, ana: 1 item(s) already done")
    with pytest.raises(ValueError, match="not allowed"):
        RankingWidget(ITEMS, store_folder=tmp_path, annotator="a/b")


def test_read_only_folder_keeps_the_ranking_on_screen(ui, monkeypatch):
    """Root ignores chmod, so `os.open` raising PermissionError stands in for a read-only folder."""
    ui.rank([[2], [1], [0]])

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", refuse)
        assert ui.submit() is None
    assert ui.status.startswith(f"error: could not save to {ui.store.path}: Permission denied")
    assert ui.places == [2, 1, 0] and ui.current == 0 and not ui.store.path.exists()
    ui.submit()  # writable again: the same ranking, one click
    assert lines(ui.store.path)[0]["ranking"] == [[2], [1], [0]]


CHECKPOINT_MESSAGE = "item 1: 'checkpoint' must be a string naming the checkpoint that wrote the answers, not"


@pytest.mark.parametrize("change, message", [
    ({"checkpoint": None}, f"{CHECKPOINT_MESSAGE} None"),
    ({"checkpoint": 5}, f"{CHECKPOINT_MESSAGE} 5"),
    ({"answers": ["only one"]}, "item 1: a ranking needs at least two answers, got ['only one']"),
])
def test_an_item_the_store_would_refuse_is_refused_at_once_not_at_every_submit(tmp_path, change, message):
    bad = [ITEMS[0], dict(ITEMS[1], **change)]
    with pytest.raises(ValueError, match=re.escape(message)):
        RankingWidget(bad, store_folder=tmp_path)
    ui = RankingWidget(lambda name: bad, store_folder=tmp_path)  # a class's share: shown at Start
    ui.start("ana")
    assert ui.status == f"error: {message}" and ui.store is None and list(tmp_path.iterdir()) == []


def test_check_file_runs_before_start_reads_and_before_every_write(tmp_path):
    calls, refuse = [], []

    def check_file(path):
        calls.append(path.name)
        if refuse:
            raise ValueError(f"{path.name} is refused")

    ui = RankingWidget(ITEMS, store_folder=tmp_path, check_file=check_file)
    ui.start("ana")
    ui.rank([[0], [1], [2]])
    ui.submit()
    assert calls == ["ana.jsonl", "ana.jsonl"] and len(lines(tmp_path / "ana.jsonl")) == 1
    refuse.append(True)
    ui.rank([[2], [1], [0]])
    assert ui.submit() is None and ui.status == "error: ana.jsonl is refused" and ui.places == [2, 1, 0]
    assert ui.skip() is None and ui.status == "error: ana.jsonl is refused"
    ui.undo()
    assert ui.status == "error: ana.jsonl is refused" and len(lines(tmp_path / "ana.jsonl")) == 1
    again = RankingWidget(ITEMS, store_folder=tmp_path, check_file=check_file)
    again.start("ana")
    assert again.store is None and again.status == "error: ana.jsonl is refused"
