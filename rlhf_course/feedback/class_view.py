"""The instructor's view of a class: `ClassView`, a widget that reads the class folder on Refresh (or every
few seconds) and shows `class_numbers.class_summary` as HTML (`summary_html`, `students_html`).

Whatever goes wrong while reading is shown in its status line and the last numbers stay on screen, so the timer
lives on and shows fresh numbers once the folder is fixed.
"""

from __future__ import annotations

import html
import math
import threading
from datetime import datetime
from pathlib import Path

import ipywidgets as widgets

from rlhf_course.feedback.class_numbers import ClassSummary, class_summary, notebook03_pairs
from rlhf_course.feedback.classroom import ClassroomError, class_folder


def _share(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}"


def summary_html(summary: ClassSummary) -> str:
    """The headline of the view: totals, α and the class's pairs against notebook 03's."""
    started = sum(row.ranked > 0 for row in summary.students)
    scale = summary.pairs / summary.notebook03_pairs if summary.notebook03_pairs else math.nan
    flagged = [row for row in summary.students if row.flagged]
    lines = [
        f"<b>{started} of {len(summary.students)} students</b> have ranked: <b>{summary.rankings} rankings</b> "
        f"({summary.skipped} skipped) → <b>{summary.pairs} pairs</b>, {scale:.0%} of the "
        f"{summary.notebook03_pairs:,} pairs notebook 03's simulated annotator gives.",
        f"Agreement: <b>Krippendorff's α = {_share(summary.alpha)}</b> over {summary.alpha_units} answer pairs ranked "
        f"by two or more students ({summary.items_ranked_twice} of {summary.items} items; 1 = all agree, "
        "0 = chance).",
    ]
    if flagged:
        names = ", ".join(f"{html.escape(row.name)} ({_share(row.vs_class)})" for row in flagged)
        lines.append(f'<span style="color: #b00020">Far below the class (median {_share(summary.class_median)}): '
                     f"{names}</span>")
    if summary.problems:
        lines.append(f'<span style="color: #b00020">{len(summary.problems)} problem(s), e.g. '
                     f"{html.escape(str(summary.problems[0]))}</span>")
    return "<br>".join(lines)


def students_html(summary: ClassSummary) -> str:
    """One row per student and one for the class: what each ranked and how far they agree."""
    header = ["student", "ranked", "skipped", "pairs", "agrees with class", "agrees with gold", ""]
    rows = []
    for row in summary.students:
        note = ("far below the class" if row.flagged else "not in the assignment" if not row.assigned else "")
        if row.other_items:
            note += f" ({row.other_items} of other items)"
        style = ' style="color: #b00020"' if row.flagged else ""
        cells = [html.escape(row.name), f"{row.ranked} / {row.assigned}", row.skipped, row.pairs,
                 _share(row.vs_class), _share(row.vs_gold), note.strip()]
        rows.append(f'<tr data-student="{html.escape(row.name)}"{style}>'
                    + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    gold_pairs = sum(row.vs_gold_pairs for row in summary.students)
    pooled_gold = (sum(row.vs_gold * row.vs_gold_pairs for row in summary.students if row.vs_gold_pairs) / gold_pairs
                   if gold_pairs else math.nan)
    total = ["<b>all</b>", f"<b>{summary.rankings}</b>", summary.skipped, summary.pairs,
             f"median {_share(summary.class_median)}", _share(pooled_gold), f"α {_share(summary.alpha)}"]
    rows.append('<tr data-student="(all)" style="border-top: 1px solid #999">'
                + "".join(f"<td>{cell}</td>" for cell in total) + "</tr>")
    head = "".join(f"<th>{cell}</th>" for cell in header)
    style = "<style>.rlhf-class-students td, .rlhf-class-students th {padding: 1px 10px; text-align: left}</style>"
    return (f'{style}<table class="rlhf-class-students" style="border-collapse: collapse"><thead><tr>{head}</tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table>')


class ClassView:
    """The instructor's view of a class folder: Refresh (or the timer) reads it and shows `class_summary`.

    CSS classes for browser tests: `rlhf-class-refresh`, `rlhf-class-auto` (the timer's checkbox),
    `rlhf-class-summary`, `rlhf-class-table` (rows carry `data-student`), `rlhf-class-status`.
    """

    def __init__(self, class_dir: str | Path | None = None, every_s: float = 10.0, simulated_pairs: int | None = None):
        self.folder = class_folder(class_dir)
        self.every_s = every_s
        self.simulated_pairs = simulated_pairs if simulated_pairs is not None else notebook03_pairs()
        self.summary: ClassSummary | None = None
        self._lock = threading.Lock()  # the button and the timer may refresh at once
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._read_at = ""  # when the numbers shown were read

        self.refresh_button = widgets.Button(description="Refresh", icon="refresh", button_style="primary")
        self.refresh_button.add_class("rlhf-class-refresh")
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.auto_box = widgets.Checkbox(value=False, description=f"refresh every {every_s:g} s", indent=False)
        self.auto_box.add_class("rlhf-class-auto")
        self.auto_box.observe(lambda change: self.start_timer() if change["new"] else self.stop_timer(), "value")
        self.summary_label = widgets.HTML()
        self.summary_label.add_class("rlhf-class-summary")
        self.table = widgets.HTML()
        self.table.add_class("rlhf-class-table")
        self.status_label = widgets.HTML()
        self.status_label.add_class("rlhf-class-status")
        self.widget = widgets.VBox([widgets.HBox([self.refresh_button, self.auto_box]), self.status_label,
                                    self.summary_label, self.table])
        self.widget.add_class("rlhf-class-view")
        self.refresh()

    def refresh(self) -> ClassSummary | None:
        """Read the folder again and show the numbers; the summary, or None when it cannot be read. Whatever
        goes wrong is shown in the status line and the last numbers stay: the timer calls this too, and must
        live on to show fresh numbers once the folder is fixed."""
        with self._lock:
            try:
                summary = class_summary(self.folder, simulated_pairs=self.simulated_pairs)
                headline, table = summary_html(summary), students_html(summary)
            except Exception as error:  # noqa: BLE001 (any error: shown, and the next refresh tries again)
                self._show_error(error)
                return None
            self.summary = summary
            self.summary_label.value, self.table.value = headline, table
            self._read_at = f"{datetime.now():%H:%M:%S}"
            self.status_label.value = (f"{html.escape(str(self.folder))} · read at {self._read_at} "
                                       f"in {summary.seconds:.2f} s")
            return summary

    def _show_error(self, error: Exception) -> None:
        """Say in the status line why this refresh failed, and how old the numbers below are."""
        text = str(error) if isinstance(error, (ClassroomError, OSError)) else f"{type(error).__name__}: {error}"
        when = f"at {datetime.now():%H:%M:%S}"
        if self.summary is not None:
            when += f"; the numbers below are from {self._read_at}"
        self.status_label.value = f'<span style="color: #b00020">error: {html.escape(text)} ({when})</span>'

    def start_timer(self) -> None:
        """Refresh every `every_s` seconds in a background thread until `stop_timer`."""
        if self._timer and self._timer.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.every_s):
                self.refresh()

        self._timer = threading.Thread(target=loop, name="class-view-timer", daemon=True)
        self._timer.start()

    def stop_timer(self) -> None:
        self._stop.set()
        if self._timer:
            self._timer.join(timeout=self.every_s + 5)
        self.auto_box.value = False

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
