"""Figures and tables the notebooks show. Plotting code lives here so the notebooks show only the lesson."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt

from .world import GOLD_WEIGHTS


def rlhf_loop_figure():
    """The RLHF loop: Prompt → LLM → Answer → Reward Model → Reward → Update LLM → Repeat."""
    steps = ["Prompt", "LLM\n(policy)", "Answer", "Reward\nModel", "Reward", "Update LLM\n(PPO)"]
    colours = ["#e8eef7", "#cfe3c8", "#e8eef7", "#f6d7b0", "#e8eef7", "#f2c4c4"]
    fig, ax = plt.subplots(figsize=(10, 2.8))
    ax.set_xlim(-0.6, len(steps) - 0.4)
    ax.set_ylim(-1.3, 0.9)
    ax.axis("off")
    for i, (step, colour) in enumerate(zip(steps, colours)):
        ax.text(i, 0, step, ha="center", va="center", fontsize=11,
                bbox=dict(boxstyle="round,pad=0.6", facecolor=colour, edgecolor="#555"))
        if i < len(steps) - 1:
            ax.annotate("", xy=(i + 0.62, 0), xytext=(i + 0.38, 0), arrowprops=dict(arrowstyle="->", lw=1.5))
    ax.annotate("", xy=(0, -0.45), xytext=(len(steps) - 1, -0.45),
                arrowprops=dict(arrowstyle="->", lw=1.5, connectionstyle="arc3,rad=0.25", color="#a33"))
    ax.text((len(steps) - 1) / 2, -1.15, "Repeat", ha="center", color="#a33", fontsize=11)
    ax.set_title("The RLHF loop (phase 3); phases 1 and 2 build the LLM and the reward model")
    fig.tight_layout()
    return fig


def loss_curve(history: list[dict], title: str, extra: dict[str, float] | None = None, smooth: int = 10):
    """Training loss per step (raw and smoothed); `extra` draws horizontal reference lines."""
    steps = [r["step"] for r in history]
    losses = [r["loss"] for r in history]
    smoothed = [sum(losses[max(0, i - smooth + 1) : i + 1]) / len(losses[max(0, i - smooth + 1) : i + 1])
                for i in range(len(losses))]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(steps, losses, alpha=0.3, label="loss per step")
    ax.plot(steps, smoothed, label=f"mean of last {smooth} steps")
    for label, value in (extra or {}).items():
        ax.axhline(value, ls="--", color="grey")
        ax.text(steps[-1], value, f" {label}", va="bottom", ha="right", color="grey")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def bar_counts(counts: dict[str, float], title: str, ylabel: str = "documents"):
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(list(counts), list(counts.values()), color="#6a8cbf")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def gold_components(results: dict[str, dict[str, float]], title: str = "Gold score by component"):
    """Grouped bars: for each model (key of `results`), the mean of every gold component and the total."""
    parts = [*GOLD_WEIGHTS, "total"]
    fig, ax = plt.subplots(figsize=(10, 3.8))
    width = 0.8 / len(results)
    for j, (model, components) in enumerate(results.items()):
        xs = [i + (j - (len(results) - 1) / 2) * width for i in range(len(parts))]
        ax.bar(xs, [components[p] for p in parts], width, label=model)
    ax.set_xticks(range(len(parts)), [f"{p}\n(w={GOLD_WEIGHTS[p]:.2f})" if p in GOLD_WEIGHTS else "TOTAL"
                                      for p in parts], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean over test prompts")
    ax.set_title(title)
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def answers_table(prompts: list[str], columns: dict[str, list[str]], scores: dict[str, list[float]] | None = None):
    """An HTML table: one row per prompt, one column per model's answer (with its gold score)."""
    from IPython.display import HTML

    head = "".join(f"<th>{html.escape(name)}</th>" for name in ["prompt", *columns])
    rows = []
    for i, prompt in enumerate(prompts):
        cells = [f"<td><b>{html.escape(prompt)}</b></td>"]
        for name, answers in columns.items():
            score = f"<br><i>gold {scores[name][i]:.2f}</i>" if scores and name in scores else ""
            cells.append(f"<td>{html.escape(answers[i])}{score}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    style = "text-align:left;vertical-align:top;font-size:0.9em"
    return HTML(f"<table style='{style}'><tr>{head}</tr>{''.join(rows)}</table>".replace("<td>", f"<td style='{style}'>"))
