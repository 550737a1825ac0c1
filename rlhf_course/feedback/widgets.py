"""Notebook widgets. `RankingWidget`: rank a model's answers with the mouse, straight into a preference file.

The widget is UI only: every check and every write goes through `preference_store.PreferenceStore`, so a
ranking made by clicking and one made by code land in the file the same way.

    ui = RankingWidget(items, store_folder="data/preferences")   # items: [{"prompt", "answers", "checkpoint"}]
    ui                                                            # shows it; or display(ui)

In a class each student ranks their own share of the items: `items` is then a function of the name typed at
Start (`classroom.student_widget` passes the class assignment's `student_items`).

Driving it from code (nbval, CI) runs the same handlers the buttons run — the methods below click
the buttons: `ui.start("ana")`, `ui.rank([[2], [0, 3], [1]])` (or `ui.set_rank(answer, place)`),
`ui.submit()`, `ui.skip()`, `ui.undo()`; read back `ui.done`, `ui.total`, `ui.status`.

Every element carries a stable CSS class for browser tests: `rlhf-annotator` (name box), `rlhf-start`,
`rlhf-prompt`, `rlhf-answer-{i}`, `rlhf-rank-{i}-{r}` (answer i, place r; both 0-based), `rlhf-submit`,
`rlhf-skip`, `rlhf-undo`, `rlhf-progress`, `rlhf-status`, `rlhf-rubric` (the rubric, closed until clicked).

`rubric_panel()` is the rubric alone: what the course's gold judge rewards, one line per part, made from
`world.gold.gold_rubric()` so that it says what the judge scores.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Callable

import ipywidgets as widgets

from rlhf_course.feedback.annotator_names import validate_annotator_name
from rlhf_course.feedback.preference_records import check_checkpoint, item_key, validate_item
from rlhf_course.feedback.preference_store import PreferenceStore, PreferenceStoreError
from rlhf_course.feedback.rankings import answer_letter, answer_places, ranking_from_places
from rlhf_course.world.gold import MIN_STORY_SENTENCES, gold_rubric

RUBRIC_TITLE = "Rubric: what the course's gold judge rewards"


def place_name(place: int) -> str:
    """The label of place `place` (0-based) for any number of answers: 1st, 2nd, 3rd, 4th … 11th … 21st, 22nd …"""
    n = place + 1
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


PLACE_NAMES = [place_name(place) for place in range(26)]  # kept for code that imported it; use place_name


def rubric_html() -> str:
    """The gold judge's rubric as HTML: one line per part, with its share of the score."""
    lines = "".join(f"<li><b>{round(weight * 100)}%</b> · {html.escape(sentence)}</li>"
                    for _, weight, sentence in gold_rubric())
    return (
        "<div>The gold judge scores each answer from 0 to 1. A good answer (each part's share "
        f"of the score first):<ul>{lines}</ul>"
        f"An answer with fewer than {MIN_STORY_SENTENCES} real sentences (three words or more, none "
        "said twice, none copied from the prompt) has its whole score scaled down. Rank by your own "
        "judgement if you like: the course compares your rankings with the judge's.</div>"
    )


def rubric_panel() -> widgets.Accordion:
    """The rubric in a panel that stays closed until clicked (CSS class `rlhf-rubric`)."""
    panel = widgets.Accordion(children=[widgets.HTML(rubric_html())], titles=(RUBRIC_TITLE,),
                              selected_index=None)
    panel.add_class("rlhf-rubric")
    return panel


def _checked_items(items: list[dict]) -> list[dict]:
    """Copies of the items, each with a `checkpoint` ("" when the item names none), if each has what the store
    writes: a prompt, at least two answers and a checkpoint that is a string. Else a `ValueError` naming the
    item, now rather than at every Submit of it."""
    checked = []
    for number, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"item {number}: an item is a dict {{'prompt', 'answers', 'checkpoint'}}, "
                             f"not {type(item).__name__}")
        try:
            validate_item(item.get("prompt"), item.get("answers"))
            checkpoint = check_checkpoint(item.get("checkpoint", ""))
        except ValueError as error:
            raise ValueError(f"item {number}: {error}") from None
        checked.append(dict(item, checkpoint=checkpoint))
    return checked


class RankingWidget:
    """Rank the answers of each item best → worst; each Submit appends one record to `<store_folder>/<name>.jsonl`.

    Per answer a row of place buttons "1st 2nd 3rd …"; giving two answers the same place is a tie.
    Skip records a skip (no pairs) and moves on; Undo takes back the last submission or skip and
    shows that item again with its places. Items this annotator has already done are skipped over, so
    a restarted notebook carries on where it stopped.

    Any number of answers works: after Z the answers are AA, AB … (`rankings.answer_letter`), after 26th
    the places go on 27th, 28th … (K answers make K × K place buttons, so keep K small for people).
    Submit, Skip and Undo before Start (they are hidden then, but code can click them) change nothing
    and say in the status area that Start comes first.
    """

    def __init__(self, items: list[dict] | Callable[[str], list[dict]], store_folder: str | Path,
                 annotator: str | None = None, source: str = "human",
                 check_file: Callable[[Path], None] | None = None, rubric: bool = True):
        # `items` as a function: called with the name at Start; a ValueError it raises (a name not in the
        # class's assignment, say) is shown in the status area, and nothing is written.
        # `check_file`: called with the annotator's file before Start reads it and before every write; a
        # ValueError it raises is shown the same way and nothing is read or written (the class folder uses it
        # to refuse a link planted under a student's name)
        # `rubric`: show the gold judge's rubric (`rubric_panel`, closed) under the progress line
        self.items_for = items if callable(items) else None
        if self.items_for is None and not items:
            raise ValueError("RankingWidget needs at least one item {'prompt', 'answers', 'checkpoint'}")
        self.items = [] if self.items_for else _checked_items(items)
        self.check_file = check_file
        self.store_folder = Path(store_folder)
        self.source = source
        self.store: PreferenceStore | None = None
        self.current: int | None = None  # index of the item on screen; None when all are done
        self.places: list[int | None] = []  # place of each answer on screen (0 = best), None = not placed
        self.last_record: dict | None = None
        self._status_text = ""

        # --- the elements (each with its CSS class) ---
        self.name_box = widgets.Text(placeholder="your name", description="Annotator:")
        self.name_box.add_class("rlhf-annotator")
        self.start_button = widgets.Button(description="Start", button_style="primary")
        self.start_button.add_class("rlhf-start")
        self.start_button.on_click(self._on_start)
        self.progress_label = widgets.HTML()
        self.progress_label.add_class("rlhf-progress")
        self.prompt_label = widgets.HTML()
        self.prompt_label.add_class("rlhf-prompt")
        self.answers_box = widgets.VBox()
        self.answer_labels: list[widgets.HTML] = []
        self.rank_buttons: list[list[widgets.Button]] = []  # rank_buttons[i][r]: answer i gets place r
        self.submit_button = widgets.Button(description="Submit", button_style="success", icon="check")
        self.submit_button.add_class("rlhf-submit")
        self.submit_button.on_click(self._on_submit)
        self.skip_button = widgets.Button(description="Skip", icon="forward")
        self.skip_button.add_class("rlhf-skip")
        self.skip_button.on_click(self._on_skip)
        self.undo_button = widgets.Button(description="Undo last", icon="undo")
        self.undo_button.add_class("rlhf-undo")
        self.undo_button.on_click(self._on_undo)
        self.status_label = widgets.HTML()
        self.status_label.add_class("rlhf-status")

        # --- layout ---
        help_text = widgets.HTML(
            "<i>Give every answer a place, 1st = best. Two answers with the same place are a tie. "
            "Submit saves at once.</i>"
        )
        self.login_row = widgets.HBox([self.name_box, self.start_button])
        self.ranking_area = widgets.VBox(
            [self.prompt_label, help_text, self.answers_box,
             widgets.HBox([self.submit_button, self.skip_button, self.undo_button])],
            layout=widgets.Layout(display="none"),
        )
        self.rubric_panel = rubric_panel() if rubric else None
        top = [self.login_row, self.progress_label] + ([self.rubric_panel] if rubric else [])
        self.widget = widgets.VBox(top + [self.ranking_area, self.status_label])
        self.widget.add_class("rlhf-ranking-widget")
        self._show_progress()
        if annotator is not None:
            validate_annotator_name(annotator)  # a bad name given in code is a programming error: raise
            self.start(annotator)

    # ---- the programmatic API: each method clicks the same button a person would ------------------

    def start(self, annotator: str) -> None:
        self.name_box.value = annotator
        self.start_button.click()

    def set_rank(self, answer: int, place: int) -> None:
        """Give `answer` the `place` (both 0-based), as clicking its place button does."""
        if not 0 <= answer < len(self.rank_buttons) or not 0 <= place < len(self.rank_buttons[answer]):
            raise ValueError(f"no place button for answer {answer}, place {place} on this item")
        self.rank_buttons[answer][place].click()

    def rank(self, ranking: list[list[int]]) -> None:
        """Click the places of a ranking `[[best…], [next…], …]`; answers not named stay unplaced."""
        self._clear_places()
        for place, group in enumerate(ranking):
            for answer in group:
                self.set_rank(answer, place)

    def submit(self) -> dict | None:
        """Click Submit; the record written, or None (then `status` says why)."""
        self.last_record = None
        self.submit_button.click()
        return self.last_record

    def skip(self) -> dict | None:
        self.last_record = None
        self.skip_button.click()
        return self.last_record

    def undo(self) -> None:
        self.undo_button.click()

    @property
    def status(self) -> str:
        return self._status_text

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def done(self) -> int:
        """Items of this list the annotator has ranked or skipped (and not undone)."""
        done = self._done_keys()
        return sum(item_key(item["prompt"], item["answers"]) in done for item in self.items)

    # ---- handlers -----------------------------------------------------------------------------------

    def _on_start(self, _button=None) -> None:
        try:
            store = PreferenceStore(self.store_folder, self.name_box.value, source=self.source)
            if self.items_for is not None:
                items = _checked_items(self.items_for(store.annotator))
                if not items:
                    raise ValueError(f"there are no items for {store.annotator} to rank")
                self.items = items
            self._check_file(store)
            store.records()  # read what this annotator already did (and fail now if unreadable)
        except (ValueError, PreferenceStoreError) as error:
            self.store = None
            self._set_status(str(error), error=True)
            return
        self.store = store
        self.login_row.layout.display = "none"
        self.ranking_area.layout.display = None
        done = self.done
        self._go_to(self._next_open_item(0))
        if done:
            self._set_status(f"welcome back, {self.store.annotator}: {done} item(s) already done in {self.store.path}")
        else:
            self._set_status(f"rankings go to {self.store.path}")

    def _on_place(self, answer: int, place: int) -> None:
        self.places[answer] = place
        self._show_places()

    def _not_started(self, action: str) -> bool:
        """Before Start there is no store (and no annotator): say so in the status area instead of failing."""
        if self.store is not None:
            return False
        self._set_status(f"nothing to {action} yet: type your name and press Start first", error=True)
        return True

    def _on_submit(self, _button=None) -> None:
        if self._not_started("submit"):
            return
        if self.current is None:
            self._set_status("all items are done; Undo last takes the last one back", error=True)
            return
        item = self.items[self.current]
        try:
            ranking = ranking_from_places(self.places)
            self._check_file(self.store)
            self.last_record = self.store.submit(item["prompt"], item["answers"], ranking, item["checkpoint"])
        except (ValueError, PreferenceStoreError) as error:  # places stay on screen: nothing is lost
            self._set_status(str(error), error=True)
            return
        self._set_status(f"saved #{len(self.store.records())} to {self.store.path}")
        self._go_to(self._next_open_item(self.current + 1))

    def _on_skip(self, _button=None) -> None:
        if self._not_started("skip"):
            return
        if self.current is None:
            self._set_status("all items are done; nothing to skip", error=True)
            return
        item = self.items[self.current]
        try:
            self._check_file(self.store)
            self.last_record = self.store.skip(item["prompt"], item["answers"], item["checkpoint"])
        except (ValueError, PreferenceStoreError) as error:
            self._set_status(str(error), error=True)
            return
        self._set_status(f"skipped item {self.current + 1} (saved #{len(self.store.records())} to {self.store.path})")
        self._go_to(self._next_open_item(self.current + 1))

    def _on_undo(self, _button=None) -> None:
        if self._not_started("undo"):
            return
        try:
            self._check_file(self.store)
            undone = self.store.undo_last()
        except (ValueError, PreferenceStoreError) as error:
            self._set_status(str(error), error=True)
            return
        if undone is None:
            self._set_status("nothing to undo")
            return
        what = "ranking" if "ranking" in undone else "skip"
        index = self._item_index(undone)
        if index is None:
            self._set_status(f"undid the last {what} (of an item not in this list)")
            self._show_progress()
            return
        self._go_to(index)
        if "ranking" in undone:  # show the undone places, ready to correct
            self.places = list(answer_places(undone["ranking"], len(undone["answers"])))
            self._show_places()
        self._set_status(f"undid the {what} of item {index + 1}; it is back on screen")

    # ---- helpers ------------------------------------------------------------------------------------

    def _check_file(self, store: PreferenceStore) -> None:
        """`check_file` on the store's file, if the widget was given one (a `ValueError` refuses it)."""
        if self.check_file is not None:
            self.check_file(store.path)

    def _done_keys(self) -> set[str]:
        if self.store is None:
            return set()
        return {item_key(r["prompt"], r["answers"]) for r in self.store.records()}

    def _next_open_item(self, start: int) -> int | None:
        """The first item from `start` on (wrapping round) not yet ranked or skipped; None when all are."""
        done = self._done_keys()
        for offset in range(self.total):
            index = (start + offset) % self.total
            if item_key(self.items[index]["prompt"], self.items[index]["answers"]) not in done:
                return index
        return None

    def _item_index(self, record: dict) -> int | None:
        key = item_key(record["prompt"], record["answers"])
        return next((i for i, it in enumerate(self.items) if item_key(it["prompt"], it["answers"]) == key), None)

    def _go_to(self, index: int | None) -> None:
        self.current = index
        if index is None:
            self.prompt_label.value = "<b>All items are done — thank you!</b>"
            self.answers_box.children = []
            self.answer_labels, self.rank_buttons, self.places = [], [], []
        else:
            self._build_item(self.items[index])
        for button in (self.submit_button, self.skip_button):
            button.disabled = index is None
        self._show_progress()

    def _build_item(self, item: dict) -> None:
        answers = item["answers"]
        self.prompt_label.value = f"<b>Prompt:</b> {html.escape(item['prompt'])}"
        self.places = [None] * len(answers)
        self.answer_labels, self.rank_buttons, rows = [], [], []
        for i, answer in enumerate(answers):
            label = widgets.HTML(
                f"<b>{answer_letter(i)}.</b> {html.escape(answer)}",
                layout=widgets.Layout(width="60%", border="1px solid #ccc", padding="4px"),
            )
            label.add_class(f"rlhf-answer-{i}")
            buttons = []
            for r in range(len(answers)):
                button = widgets.Button(description=place_name(r), layout=widgets.Layout(width="52px"))
                button.add_class(f"rlhf-rank-{i}-{r}")
                button.on_click(lambda _b, i=i, r=r: self._on_place(i, r))
                buttons.append(button)
            self.answer_labels.append(label)
            self.rank_buttons.append(buttons)
            rows.append(widgets.HBox([label, widgets.HBox(buttons)]))
        self.answers_box.children = rows

    def _clear_places(self) -> None:
        self.places = [None] * len(self.places)
        self._show_places()

    def _show_places(self) -> None:
        for answer, buttons in enumerate(self.rank_buttons):
            for place, button in enumerate(buttons):
                button.button_style = "info" if self.places[answer] == place else ""

    def _show_progress(self) -> None:
        who = html.escape(self.store.annotator) if self.store else "—"
        where = f"item {self.current + 1} · " if self.current is not None else ""
        self.progress_label.value = f"{where}<b>{self.done} / {self.total} done</b> · annotator: <b>{who}</b>"

    def _set_status(self, text: str, error: bool = False) -> None:
        self._status_text = ("error: " if error else "") + text
        colour = "#b00020" if error else "#1b5e20"
        self.status_label.value = f'<span style="color: {colour}">{html.escape(self._status_text)}</span>'

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
