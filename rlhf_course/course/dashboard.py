"""The live RL dashboard (PPO in notebook 04, GRPO in 07): curves of every health metric, the answers to a few
fixed prompts over time, and plain-language warnings, updated in place after every iteration (ipywidgets +
matplotlib).

Headless (`course.is_headless()`: the runner, nbval, the executed copies the book shows), nobody watches the
live widget, so it is not shown; `close()` shows the run's final state instead: one readable 3×3 figure of the
most telling curves (`summary_figure`), the warnings, and a few sample answers as a small table."""

from __future__ import annotations

import html

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display
from tqdm.auto import tqdm

from rlhf_course.course.session import is_headless
from rlhf_course.course.tables import Table
from rlhf_course.engine.rl import RLState, diagnose

# metric → (title, what a healthy run looks like)
PANELS = {
    "reward": ("reward-model score", "rises"),
    "gold": ("gold score (held-out)", "rises with the reward"),
    "kl": ("KL to reference (nats/answer)", "grows slowly, stays > 0"),
    "entropy": ("entropy (nats/token)", "falls slowly"),
    "clip_fraction": ("clip fraction", "a few %"),
    "approx_kl": ("approx-KL per update", "< 0.02"),
    "value_loss": ("value loss", "falls"),
    "explained_variance": ("explained variance", "rises towards 1"),
    "mean_length": ("mean answer length (tokens)", "stable"),
    "ended_fraction": ("answers that end", "→ 1"),
}
# GRPO has no critic (no value loss, no explained variance); instead: the verifier and the groups that teach nothing
GRPO_PANELS = {
    "reward": ("reward (reward model + verifier)", "rises"),
    "gold": ("gold score (held-out)", "rises with the reward"),
    "kl": ("KL to reference (nats/answer)", "grows slowly, stays > 0"),
    "entropy": ("entropy (nats/token)", "falls slowly"),
    "clip_fraction": ("clip fraction", "a few %"),
    "approx_kl": ("approx-KL per update", "< 0.02"),
    "flat_groups": ("groups with equal rewards", "low: they teach nothing"),
    "verifier": ("verifier reward", "rises (when used)"),
    "mean_length": ("mean answer length (tokens)", "stable"),
    "ended_fraction": ("answers that end", "→ 1"),
}


def ppo_figure(history: list[dict], panels: dict[str, tuple[str, str]] = PANELS):
    """All dashboard curves in one figure (also what the book shows after the run)."""
    fig, axes = plt.subplots(2, 5, figsize=(16, 5.6))
    for ax, (key, (title, healthy)) in zip(axes.flat, panels.items()):
        points = [(r["iteration"], r[key]) for r in history if key in r]
        if points:
            ax.plot(*zip(*points), "o-" if key == "gold" else "-", ms=3)
        ax.set_title(title, fontsize=9)
        ax.text(0.02, 0.02, f"healthy: {healthy}", transform=ax.transAxes, fontsize=7, color="grey")
        ax.tick_params(labelsize=7)
    for ax in axes[1]:
        ax.set_xlabel("iteration", fontsize=8)
    fig.tight_layout()
    return fig


# the curves the final figure shows, in this order (those of a dashboard's panels with data, at most 9)
SUMMARY_KEYS = ("reward", "gold", "kl", "entropy", "clip_fraction", "approx_kl", "explained_variance",
                "flat_groups", "verifier", "mean_length", "ended_fraction")


def summary_keys(history: list[dict], panels: dict[str, tuple[str, str]] = PANELS) -> list[str]:
    """The panels of the final figure: SUMMARY_KEYS that are in `panels` and have data, at most 9."""
    present = {key for record in history for key in record}
    return [key for key in SUMMARY_KEYS if key in panels and key in present][:9]


def summary_figure(history: list[dict], panels: dict[str, tuple[str, str]] = PANELS, title: str = ""):
    """The run's final state in one readable figure: a 3×3 grid of the most telling curves."""
    keys = summary_keys(history, panels)
    fig, axes = plt.subplots(3, 3, figsize=(12, 9.5), sharex=True)
    for ax, key in zip(axes.flat, keys):
        title_, healthy = panels[key]
        points = [(r["iteration"], r[key]) for r in history if key in r]
        ax.plot(*zip(*points), "o-" if key == "gold" else "-", ms=5, lw=2)
        ax.set_title(title_, fontsize=12, pad=18)
        ax.text(0.5, 1.02, f"healthy: {healthy}", transform=ax.transAxes, ha="center", va="bottom",
                fontsize=10, color="grey")  # under the title, clear of the curve
        ax.tick_params(labelsize=10)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("iteration", fontsize=11)
        ax.xaxis.set_tick_params(labelbottom=True)
    if title:
        fig.suptitle(title, fontsize=14)
    fig.tight_layout()
    return fig


def samples_summary(samples: list[dict], prompts: list[str], shown: int = 2) -> Table:
    """A few sample answers: for the first `shown` fixed prompts, the answer at the first and at the last
    evaluation, with its gold score."""
    points = samples[:1] + samples[1:][-1:]
    rows = [{"prompt": prompt, "iteration": point["iteration"], "answer": point["answers"][i],
             "gold": point["gold"][i]}
            for i, prompt in enumerate(prompts[:shown]) for point in points]
    return Table(rows, caption="Sample answers at the first and the last evaluation")


def samples_table(samples: list[dict], prompts: list[str]) -> str:
    """HTML: rows = fixed prompts, columns = evaluation points; each cell the answer and its gold score."""
    head = "<tr><th>prompt</th>" + "".join(f"<th>iteration {s['iteration']}</th>" for s in samples) + "</tr>"
    rows = []
    for i, prompt in enumerate(prompts):
        cells = "".join(f"<td>{html.escape(s['answers'][i])}<br><i>gold {s['gold'][i]:.2f}</i></td>" for s in samples)
        rows.append(f"<tr><td><b>{html.escape(prompt)}</b></td>{cells}</tr>")
    style = "text-align:left;vertical-align:top;font-size:0.8em"
    return f"<table style='{style}'>{head}{''.join(rows)}</table>".replace("<td>", f"<td style='{style}'>")


class RLDashboard:
    """Call `update(state)` after each iteration; display the dashboard in a notebook cell. For GRPO:
    `RLDashboard(iterations, prompts, method="GRPO", panels=GRPO_PANELS)`."""

    def __init__(self, total_iterations: int, fixed_prompts: list[str], method: str = "PPO",
                 panels: dict[str, tuple[str, str]] = PANELS):
        self.fixed_prompts = fixed_prompts
        self.panels = panels
        self.method = method
        self.state: RLState | None = None
        self.bar = tqdm(total=total_iterations, desc=method, unit="iteration")
        self.plots = widgets.Output()
        self.table = widgets.HTML()
        self.warnings = widgets.HTML()
        self.widget = widgets.VBox([self.warnings, self.plots, self.table])
        self.widget.add_class("rlhf-ppo-dashboard")
        self.shown_warnings: list[str] = []

    def _ipython_display_(self):
        if is_headless():  # nobody watches it: close() shows the final state instead
            print(f"{self.method} dashboard: live in JupyterLab; its final state follows the training cell.")
        else:
            display(self.widget)

    def update(self, state: RLState) -> None:  # PPO's or GRPO's
        record = state.history[-1]
        self.state = state
        self.bar.update(1)
        self.bar.set_postfix(reward=f"{record['reward']:.2f}", kl=f"{record['kl']:.2f}",
                             gold=f"{record.get('gold', float('nan')):.3f}")
        if not is_headless():  # nobody is watching: the notebook shows the final figure after the run
            with self.plots:
                self.plots.clear_output(wait=True)
                fig = ppo_figure(state.history, self.panels)
                display(fig)
                plt.close(fig)
        if state.samples:
            self.table.value = samples_table(state.samples, self.fixed_prompts)
        self.shown_warnings = diagnose(state.history)
        self.warnings.value = "".join(
            f"<div style='color:#a40;font-weight:bold'>⚠ {html.escape(w)}</div>" for w in self.shown_warnings)

    def close(self) -> None:
        """End the progress bar; headless, show the run's final state (`finish`)."""
        self.bar.close()
        if is_headless():
            self.finish()

    def finish(self) -> None:
        """The run's final state: the summary figure, the warnings, a few sample answers."""
        if self.state is None or not self.state.history:
            return
        fig = summary_figure(self.state.history, self.panels, f"{self.method}: the run at a glance")
        display(fig)
        plt.close(fig)
        for warning in self.shown_warnings:
            print(f"⚠ {warning}")
        if self.state.samples:
            display(samples_summary(self.state.samples, self.fixed_prompts))
