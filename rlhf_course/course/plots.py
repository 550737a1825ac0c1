"""Figures and tables the notebooks show. Plotting code lives here so the notebooks show only the lesson."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt

from rlhf_course.world import GOLD_WEIGHTS


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
    table = f"<table style='{style}'><tr>{head}</tr>{''.join(rows)}</table>"
    return HTML(table.replace("<td>", f"<td style='{style}'>"))


def histogram(values: list[float], title: str, xlabel: str, bins: int = 20):
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(values, bins=bins, color="#6a8cbf", edgecolor="white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def training_curves(history: list[dict], keys: list[str], title: str, smooth: int = 10):
    """One panel per metric in `keys`, smoothed over `smooth` steps."""
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.2), squeeze=False)
    steps = [r["step"] for r in history]
    for ax, key in zip(axes[0], keys):
        values = [r[key] for r in history]
        smoothed = [sum(values[max(0, i - smooth + 1) : i + 1]) / len(values[max(0, i - smooth + 1) : i + 1])
                    for i in range(len(values))]
        ax.plot(steps, values, alpha=0.3)
        ax.plot(steps, smoothed)
        ax.set_xlabel("step")
        ax.set_title(key)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def reward_diagnostics(rewards: list[float], gold: list[float], reward_margins: list[float],
                       gold_margins: list[float], bins: int = 8):
    """Left: reward against gold score per answer. Right: calibration of σ(reward margin) on answer pairs."""
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.scatter(gold, rewards, s=6, alpha=0.4)
    left.set_xlabel("gold score")
    left.set_ylabel("reward (normalised)")
    left.set_title(f"Reward vs gold (r = {np.corrcoef(rewards, gold)[0, 1]:.2f})")

    predicted = 1 / (1 + np.exp(-np.asarray(reward_margins)))  # P(a ≻ b) by Bradley–Terry
    keep = np.abs(np.asarray(gold_margins)) >= 1e-9
    predicted, outcome = predicted[keep], (np.asarray(gold_margins)[keep] > 0).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(predicted, edges) - 1, 0, bins - 1)
    centres = [predicted[which == b].mean() for b in range(bins) if (which == b).any()]
    observed = [outcome[which == b].mean() for b in range(bins) if (which == b).any()]
    right.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    right.plot(centres, observed, "o-", label="reward model")
    right.set_xlabel("predicted P(A preferred)  = σ(r_A − r_B)")
    right.set_ylabel("share the gold judge prefers A")
    right.set_title("Calibration on held-out answer pairs")
    right.legend()
    fig.tight_layout()
    return fig


def win_rate_matrix(names: list[str], matrix, intervals: dict | None = None):
    """Heat map of pairwise win rates (row beats column), with bootstrap intervals when given."""
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 1.3 * len(names) + 1.2))
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="RdBu")
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            text = "—" if i == j else f"{matrix[i][j]:.2f}"
            if intervals and (a, b) in intervals:
                text += f"\n[{intervals[(a, b)][0]:.2f}, {intervals[(a, b)][1]:.2f}]"
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("opponent")
    ax.set_ylabel("model")
    ax.set_title("Win rate by the gold judge (row beats column; ties ½)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def gold_vs_kl(points: dict[str, tuple[float, float]]):
    """Gold score against KL divergence from SFT, one point per model."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (kl, gold) in points.items():
        ax.scatter(kl, gold, s=60)
        ax.annotate(name, (kl, gold), textcoords="offset points", xytext=(6, 4))
    ax.set_xlabel("KL from SFT (nats per answer)")
    ax.set_ylabel("gold score (mean over 200 test prompts)")
    ax.set_title("What each phase bought, and how far it moved")
    fig.tight_layout()
    return fig


def scoreboard(rows: dict[str, dict], best_of_n: list[dict] | None = None):
    """The course's methods on one picture: gold (with its 95% interval) against KL from SFT, one point each;
    `best_of_n` (`{"n", "gold", "kl"}` with the analytic KL) as a curve. The legend sits under the axes, in two
    columns, so that the figure reads at the width of a page's text.
    `rows`: name → {"gold", "low", "high", "kl"}."""
    fig, ax = plt.subplots(figsize=(7, 5.6))
    if best_of_n:
        ax.plot([p["kl"] for p in best_of_n], [p["gold"] for p in best_of_n], "--", color="grey", zorder=1,
                label="best-of-n (n = " + ", ".join(str(p["n"]) for p in best_of_n) + ")")
    markers = "osD^vP*Xhp<>"
    for i, (name, row) in enumerate(rows.items()):
        ax.errorbar(row["kl"], row["gold"], yerr=[[row["gold"] - row["low"]], [row["high"] - row["gold"]]],
                    fmt=markers[i % len(markers)], ms=7, capsize=3, label=name, zorder=2)
    ax.set_xlabel("KL from SFT (nats per answer)")
    ax.set_ylabel("gold score (mean, 95% interval)")
    ax.set_title("What each method bought, and how far it moved from SFT")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    return fig

def overoptimisation(curve: list[dict], better: list[dict] | None = None, each: list[list[dict]] | None = None):
    """Proxy reward and gold score of best-of-n against its KL from SFT, each point labelled with n
    (Gao et al. 2022, fig. 1); `better`: the gold score of best-of-n with a better reward model, for comparison;
    `each`: the curves whose mean `curve` is (one per weak proxy), drawn thin."""
    kl = [p["kl"] for p in curve]
    fig, (ax, gold_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for one in each or []:
        ax.plot(kl, [p["proxy"] for p in one], "-", color="#c60", alpha=0.3, linewidth=1)
        gold_ax.plot(kl, [p["gold"] for p in one], "-", color="#26a", alpha=0.3, linewidth=1)
    ax.plot(kl, [p["proxy"] for p in curve], "o-", color="#c60")
    ax.set_xlabel("KL from SFT (nats) = log n − (n − 1)/n")
    ax.set_title("Proxy: what the weak reward model says")
    ax.set_ylabel("proxy reward of the pick (normalised)")
    gold_ax.plot(kl, [p["gold"] for p in curve], "s-", color="#26a", label="picked by the weak reward model")
    for point in curve:
        gold_ax.annotate(f"n={point['n']}", (point["kl"], point["gold"]), textcoords="offset points", xytext=(0, -12),
                         ha="center", fontsize=8, color="#26a")
    if better:
        gold_ax.plot([p["kl"] for p in better], [p["gold"] for p in better], "^--", color="#393",
                     label="picked by notebook 03's reward model")
    gold_ax.set_xlabel("KL from SFT (nats) = log n − (n − 1)/n")
    gold_ax.set_ylabel("gold score of the pick")
    gold_ax.set_title("Gold: what people really want")
    gold_ax.legend(fontsize=8)
    fig.suptitle("Over-optimisation with best-of-n: the proxy keeps rising, the gold score does not")
    fig.tight_layout()
    return fig


def biased_annotators(rows: dict[str, dict]):
    """Each reward model's held-out accuracy; the SFT policy and the policies PPO made against the biased
    reward models: gold score, answer length, and the share of other-mood stories with happy words."""
    colours = {"sft": "#999999", "unbiased (03)": "#6a8cbf", "length-biased": "#d08a3c", "happy-biased": "#8bb174"}
    panels = [("heldout_accuracy", "reward-model accuracy (gold pairs)"), ("gold", "gold score of the policy"),
              ("mean_length", "answer length (tokens)"), ("happy_share", "happy words in other moods")]
    fig, axes = plt.subplots(1, len(panels), figsize=(14, 3.2))
    for ax, (key, title) in zip(axes, panels):
        names = [n for n in rows if key in rows[n]]
        ax.bar(names, [rows[n][key] for n in names], color=[colours.get(n, "#6a8cbf") for n in names])
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle("Labels from biased annotators: what the reward model learned, what PPO made of it")
    fig.tight_layout()
    return fig


def label_budget(grid: list[dict]):
    """Reward-model accuracy over number of pairs × annotator noise."""
    counts = sorted({c["n_pairs"] for c in grid})
    noises = sorted({c["noise_p_wrong_at_0.1"] for c in grid})
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for noise in noises:
        cells = sorted((c for c in grid if c["noise_p_wrong_at_0.1"] == noise), key=lambda c: c["n_pairs"])
        ax.plot([c["n_pairs"] for c in cells], [c["heldout_accuracy"] for c in cells], "o-",
                label=f"P(wrong) at Δgold 0.1 = {noise:.2f}")
    ax.set_xscale("log")
    ax.set_xticks(counts, [str(c) for c in counts])
    ax.set_xlabel("preference pairs")
    ax.set_ylabel("held-out pairwise accuracy")
    ax.set_title("More labels, cleaner labels")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def probe_accuracy(judges: dict[str, dict[str, float]], title: str, n_per_probe: int):
    """Horizontal bars: for each probe (`world.probe_pairs`) and each judge, how often the judge prefers the
    answer without the mistake. 0.5 is a coin toss; below it, the judge prefers the mistake."""
    probes = list(next(iter(judges.values())))[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.3 * len(probes) * (1 + 0.6 * (len(judges) - 1))))
    height = 0.8 / len(judges)
    for j, (judge, accuracy) in enumerate(judges.items()):
        ys = [i + (len(judges) - 1 - 2 * j) * height / 2 for i in range(len(probes))]
        ax.barh(ys, [accuracy[p] for p in probes], height, label=judge)
        for y, p in zip(ys, probes):
            ax.text(accuracy[p] + 0.01, y, f"{accuracy[p]:.2f}", va="center", fontsize=7)
    ax.axvline(0.5, color="#555", linestyle="--", lw=1, label="chance")
    ax.set_yticks(range(len(probes)), probes)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel(f"share of {n_per_probe} pairs where the answer without the mistake scores higher")
    ax.set_title(title)
    ax.legend(loc="center right", bbox_to_anchor=(1.0, 0.68), fontsize=8)  # beside the short mismatch bars
    fig.tight_layout()
    return fig
