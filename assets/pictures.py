"""Draws the course's pictures into assets/: each teaching MDP once (the corridor, the gridworld
with its trap, the road) and the data flow of batch, online, parallel and off-policy
actor-critic. The MDPs are read from the library (acteach.tabular, acteach.discount), so a
picture shows the MDP the notebooks use. Deterministic: the same files every run.

    python assets/pictures.py          # then: python -m acteach exercises build

A notebook shows one with a markdown cell `![the corridor](attachment:corridor.png)`: the script
also stores each picture as an attachment of the solution notebooks' cells that name it, so a
notebook shows its pictures wherever it is opened (a relative link would depend on the folder
JupyterLab was started in); tests/test_pictures.py checks every attachment is the file here.
"""
from __future__ import annotations

import base64
import re
import sys
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import nbformat
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

from acteach.discount import road_mdp
from acteach.tabular import chain_mdp, gridworld_mdp

HERE = Path(__file__).resolve().parent
BLUE, ORANGE, GREEN, RED, GREY = "#2b6cb0", "#dd6b20", "#2f855a", "#c53030", "0.45"


def _figure(width: float, height: float, xlim: tuple, ylim: tuple) -> tuple[Figure, object]:
    """A blank figure whose axes fill it, in data coordinates xlim x ylim (equal aspect)."""
    fig = Figure(figsize=(width, height), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    ax.axis("off")
    return fig, ax


def _arrow(ax, start, end, color=GREY, rad=0.0, text="", text_at=None, lw=1.3, **text_kw):
    """An arrow start -> end (bent by rad), with an optional label at text_at."""
    ax.add_patch(FancyArrowPatch(start, end, connectionstyle=f"arc3,rad={rad}",
                                 arrowstyle="-|>", mutation_scale=11, color=color, lw=lw,
                                 shrinkA=2, shrinkB=2))
    if text:
        ax.text(*text_at, text, ha="center", va="center", color=color, fontsize=8, **text_kw)


def _box(ax, xy, text, width=2.3, height=0.9, color=BLUE, fontsize=8.5):
    """A rounded box centred at xy holding text."""
    x, y = xy
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.02,rounding_size=0.12",
                                facecolor="white", edgecolor=color, lw=1.4))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


# ---------------------------------------------------------------------------------------------
# The teaching MDPs
# ---------------------------------------------------------------------------------------------

def corridor() -> Figure:
    """chain_mdp(): states 0..4 and the goal; right 0.9 (slips left 0.1), -1 a step, +10 for
    trying right in the last state."""
    mdp = chain_mdp()
    n = mdp.n_states - 1
    fig, ax = _figure(7.2, 2.3, (-0.9, 2 * n + 0.9), (-1.6, 1.6))
    for s in range(n + 1):
        goal = mdp.terminal[s]
        ax.add_patch(Circle((2 * s, 0), 0.45, facecolor="#e6f4ea" if goal else "white",
                            edgecolor=GREEN if goal else BLUE, lw=2.4 if goal else 1.4))
        ax.text(2 * s, 0, mdp.names[s], ha="center", va="center", fontsize=10)
    ax.text(0, -0.75, "start", ha="center", va="top", fontsize=8, color=BLUE)
    for s in range(n):
        last = s == n - 1
        _arrow(ax, (2 * s + 0.4, 0.2), (2 * s + 1.6, 0.2), BLUE, rad=-0.35,
               text=f"right: {mdp.R[s, 1]:+g}" if last else ("right" if s == 0 else ""),
               text_at=(2 * s + 1, 0.95))
        _arrow(ax, (2 * s + 1.6, -0.2) if not last else (2 * s + 1.55, -0.25),
               (2 * s + 0.4, -0.2), GREY, rad=-0.35, text="left" if s == 0 else "",
               text_at=(2 * s + 1, -0.85))
    ax.text(n - 1, 1.45, f"each step {mdp.R[0, 0]:+g}; a move slips the other way with "
            f"probability {mdp.P[0, 1, 0]:.1f} (left from 0 stays at 0)", ha="center",
            va="center", fontsize=8.5)
    ax.text(n - 1, -1.3, f"right from {n - 1} pays {mdp.R[n - 1, 1]:+g} for the attempt, even "
            f"when it slips back to {n - 2};\nonly reaching the goal ends the episode",
            ha="center", va="center", fontsize=8.5, color=BLUE)
    return fig


def gridworld() -> Figure:
    """gridworld_mdp(): 3 x 4 cells, wall, goal G (+1), trap X (-1), start S."""
    mdp = gridworld_mdp()
    rows, cols = 3, 4
    fig, ax = _figure(6.6, 3.0, (-0.1, cols + 3.2), (-0.1, rows + 0.1))
    names = dict(zip([(r, c) for r in range(rows) for c in range(cols) if (r, c) != (1, 1)],
                     mdp.names))
    fill = {"G": "#e6f4ea", "X": "#fde8e8", "S": "#e8f0fb"}
    for r in range(rows):
        for c in range(cols):
            name = names.get((r, c))
            y = rows - 1 - r
            ax.add_patch(Rectangle((c, y), 1, 1, facecolor="0.3" if name is None
                                   else fill.get(name, "white"), edgecolor="0.5"))
            label = {"G": "G\n+1", "X": "X\n\u22121", "S": "S\nstart"}.get(name, "")
            ax.text(c + 0.5, y + 0.5, label, ha="center", va="center", fontsize=10,
                    color={"G": GREEN, "X": RED}.get(name, "k"))
    # an action from the cell left of the trap: 0.9 as intended, 0.05 to each side
    _arrow(ax, (2.5, 1.5), (3.35, 1.5), BLUE, text="0.9", text_at=(2.9, 1.66))
    _arrow(ax, (2.5, 1.5), (2.5, 2.35), GREY, text="0.05", text_at=(2.28, 2.05))
    _arrow(ax, (2.5, 1.5), (2.5, 0.65), GREY, text="0.05", text_at=(2.28, 0.95))
    ax.text(cols + 0.25, rows - 0.3,
            "actions: up, right, down, left\n"
            "a move goes sideways with\nprobability 0.1 (0.05 each side)\n"
            "into a wall or the edge: stay\n\n"
            f"each step {mdp.R[mdp.names.index('00'), 0]:+.2f}\n"
            "G and X end the episode\n"
            f"cut at {mdp.horizon} steps", ha="left", va="top", fontsize=8.5)
    return fig


def road() -> Figure:
    """road_mdp(): 40 states walked in order; in each, drive on (0) or stop for the offer b_s,
    which may cost a step (stay, probability 0.3)."""
    mdp = road_mdp()
    offers = mdp.R[:-1, 1]
    length = len(offers)
    fig = Figure(figsize=(7.2, 2.9), dpi=90)
    FigureCanvasAgg(fig)
    top = fig.add_axes((0.0, 0.52, 1.0, 0.48))
    top.set(xlim=(-0.8, 12.6), ylim=(-1.0, 1.5), aspect="equal")
    top.axis("off")
    shown = [0, 1, 2, None, length - 1, "end"]
    for i, s in enumerate(shown):
        x = 2.2 * i
        if s is None:
            top.text(x, 0, "\u2026", ha="center", va="center", fontsize=14)
            continue
        end = s == "end"
        top.add_patch(Circle((x, 0), 0.45, facecolor="#e6f4ea" if end else "white",
                             edgecolor=GREEN if end else BLUE, lw=2.2 if end else 1.4))
        top.text(x, 0, str(s), ha="center", va="center", fontsize=9)
        if end:
            continue
        _arrow(top, (x + 0.45, 0), (x + 1.75, 0), BLUE)
        top.add_patch(FancyArrowPatch((x - 0.3, 0.35), (x + 0.3, 0.35),
                                      connectionstyle="arc3,rad=-1.6", arrowstyle="-|>",
                                      mutation_scale=9, color=ORANGE, lw=1.2))
    top.text(1.1, -0.35, "drive on: 0", ha="center", va="top", fontsize=8, color=BLUE)
    top.text(0, 1.25, "stop: $b_s$, stay with probability 0.3", ha="left", va="center", fontsize=8,
             color=ORANGE)
    bottom = fig.add_axes((0.08, 0.14, 0.9, 0.34))
    bottom.bar(np.arange(length), offers, color=np.where(offers > 0, ORANGE, "0.7"), width=0.8)
    bottom.axhline(0, color="0.3", lw=0.6)
    bottom.set(xlim=(-0.8, length - 0.2), xlabel="state s",
               ylabel="offer $b_s$")
    bottom.xaxis.label.set_size(8)
    bottom.yaxis.label.set_size(8)
    bottom.tick_params(labelsize=7)
    for side in ("top", "right"):
        bottom.spines[side].set_visible(False)
    return fig


# ---------------------------------------------------------------------------------------------
# Data flow of the actor-critic algorithms
# ---------------------------------------------------------------------------------------------

def _cycle(boxes: list[tuple[tuple[float, float], str]], ax, color=BLUE) -> None:
    """Boxes joined in order by arrows, the last back to the first."""
    for (xy, text) in boxes:
        _box(ax, xy, text, color=color)
    for (a, _), (b, _) in zip(boxes, boxes[1:] + boxes[:1]):
        (x0, y0), (x1, y1) = a, b
        if y0 == y1:
            step = np.sign(x1 - x0) * 1.2
            _arrow(ax, (x0 + step, y0), (x1 - step, y1))
        else:
            step = np.sign(y1 - y0) * 0.5
            _arrow(ax, (x0, y0 + step), (x1, y1 - step))


def batch_ac() -> Figure:
    """Batch actor-critic: N trajectories -> fit V -> advantages -> one actor step."""
    fig, ax = _figure(7.6, 2.7, (-0.3, 10.5), (-0.6, 3.2))
    _cycle([((1.2, 2.3), "sample N trajectories\nwith $\\pi_\\theta$"),
            ((5.1, 2.3), "fit $\\hat V_\\phi$ to targets\n"
             "$y_t = r_t + \\gamma\\hat V_\\phi(s_{t+1})$"),
            ((9.0, 2.3), "advantages\n$A_t = y_t - \\hat V_\\phi(s_t)$"),
            ((9.0, 0.4), "one actor step\n$\\theta \\leftarrow \\theta + \\alpha\\,\\hat g$"),
            ((1.2, 0.4), "new policy $\\pi_\\theta$,\nold data discarded")], ax)
    ax.text(5.1, -0.25, "$\\hat g = \\frac{1}{N}\\sum_n\\sum_t\\nabla\\log\\pi_\\theta"
            "(a_{n,t}|s_{n,t})\\,A_{n,t}$", ha="center", va="center", fontsize=9)
    ax.text(5.1, 3.05, "batch: all N x T steps, then one update", ha="center", fontsize=9,
            weight="bold")
    return fig


def online_ac() -> Figure:
    """Online actor-critic: one step (s, a, r, s') -> critic step -> advantage -> actor step."""
    fig, ax = _figure(7.6, 2.7, (-0.3, 10.5), (-0.6, 3.2))
    _cycle([((1.2, 2.3), "take one step\n$(s, a, r, s')$, $a\\sim\\pi_\\theta$"),
            ((5.1, 2.3), "critic step on\n$(r + \\gamma\\hat V_\\phi(s') - \\hat V_\\phi(s))^2$"),
            ((9.0, 2.3), "advantage\n$A = r + \\gamma\\hat V_\\phi(s') - \\hat V_\\phi(s)$"),
            ((9.0, 0.4), "actor step\n$\\theta \\leftarrow \\theta + \\alpha\\nabla\\log"
             "\\pi_\\theta(a|s)\\,A$"),
            ((1.2, 0.4), "$s \\leftarrow s'$\n(reset if it ended)")], ax)
    ax.text(5.1, -0.25, "one sample per update: large variance",
            ha="center", va="center", fontsize=8.5, color=RED)
    ax.text(5.1, 3.05, "online: an update after every step", ha="center", fontsize=9,
            weight="bold")
    return fig


def parallel_ac(n_envs: int = 6, n_steps: int = 10, seed: int = 3) -> Figure:
    """Parallel (synchronous) actor-critic: the N x T grid of steps of one update, N envs in
    rows, T steps in columns; R marks a step that ended an episode, the hatched cell after it
    the env's reset step (gymnasium resets on the next step: no transition, off the mask)."""
    rng = np.random.default_rng(seed)
    ends = rng.random((n_envs, n_steps)) < 0.12           # illustrative episode ends
    fig, ax = _figure(7.6, 3.0, (-2.4, n_steps + 4.4), (-1.3, n_envs + 0.9))
    for n in range(n_envs):
        y = n_envs - 1 - n
        ax.text(-0.25, y + 0.45, f"env {n + 1}", ha="right", va="center", fontsize=8)
        for t in range(n_steps):
            ax.add_patch(Rectangle((t + 0.05, y + 0.05), 0.9, 0.8,
                                   facecolor="#fde8e8" if ends[n, t] else "#e8f0fb",
                                   edgecolor=RED if ends[n, t] else BLUE, lw=1.0))
            if ends[n, t]:
                ax.text(t + 0.5, y + 0.45, "R", ha="center", va="center", fontsize=8,
                        color=RED, weight="bold")
            elif t > 0 and ends[n, t - 1]:                 # the env's reset step
                ax.add_patch(Rectangle((t + 0.05, y + 0.05), 0.9, 0.8, facecolor="0.85",
                                       edgecolor=GREY, lw=1.0, hatch="///"))
    ax.text(n_steps / 2, n_envs + 0.45, f"one update = N x T = {n_envs} x {n_steps} steps "
            "(one per env per time step)", ha="center", fontsize=9, weight="bold")
    _arrow(ax, (0, -0.35), (n_steps, -0.35), GREY, text="time t = 1..T, then update, the envs "
           "go on from where they were", text_at=(n_steps / 2, -0.85))
    ax.text(n_steps + 0.3, n_envs - 0.3,
            "R: the episode ended\nat this step.\nHatched: the env's\nreset step, not a\n"
            "transition: off the\nmask of the update.\n\nTarget $y = r + \\gamma \\hat V(s')$;\n"
            "at R, $y = r$ if it\nterminated: never\nbootstrap into the\nnext episode", ha="left",
            va="top",
            fontsize=8)
    return fig


def off_policy_ac() -> Figure:
    """Off-policy actor-critic: a replay buffer of old transitions; Q-critic with a fresh a' ~ pi;
    the actor uses a fresh a^pi ~ pi at the buffer's states."""
    fig, ax = _figure(7.8, 3.2, (-0.3, 10.8), (-0.9, 3.6))
    _box(ax, (1.2, 2.6), "act with $\\pi_\\theta$\nin the environment")
    _box(ax, (5.1, 2.6), "replay buffer\nold $(s, a, r, s')$", color=ORANGE)
    _box(ax, (9.0, 2.6), "sample a batch\n$(s_i, a_i, r_i, s_i')$", color=ORANGE)
    _box(ax, (9.2, 0.55), "critic: fit $\\hat Q_\\psi(s_i, a_i)$ to\n"
         "$r_i + \\gamma\\hat Q_\\psi(s_i', a_i')$, $a_i'\\sim\\pi_\\theta(\\cdot|s_i')$",
         width=3.0)
    _box(ax, (4.2, 0.55), "actor: $a_i^\\pi\\sim\\pi_\\theta(\\cdot|s_i)$, step on\n"
         "$\\nabla\\log\\pi_\\theta(a_i^\\pi|s_i)\\,\\hat Q_\\psi(s_i, a_i^\\pi)$", width=3.3)
    _arrow(ax, (2.35, 2.6), (3.95, 2.6), text="store", text_at=(3.15, 2.8))
    _arrow(ax, (6.25, 2.6), (7.85, 2.6), ORANGE, text="uniform", text_at=(7.05, 2.8))
    _arrow(ax, (9.0, 2.15), (9.0, 1.0))
    _arrow(ax, (7.7, 0.55), (5.85, 0.55), text="$\\hat Q_\\psi$", text_at=(6.7, 0.75))
    _arrow(ax, (2.55, 0.55), (1.2, 2.15), rad=-0.3, text="new $\\pi_\\theta$",
           text_at=(1.35, 1.05))
    ax.text(5.1, -0.6, "the buffer's actions $a_i$ come from old policies: only the critic's "
            "input uses them; every action that\nstands for $\\pi_\\theta$ "
            "($a_i'$, $a_i^\\pi$) is drawn fresh from the current policy", ha="center",
            va="center", fontsize=8)
    ax.text(5.1, 3.4, "off-policy: learn from old data through $\\hat Q$", ha="center",
            fontsize=9, weight="bold")
    return fig


#: The pictures, by file name (assets/NAME.png).
PICTURES: dict[str, Callable[[], Figure]] = {
    "corridor": corridor,
    "gridworld": gridworld,
    "road": road,
    "batch_ac": batch_ac,
    "online_ac": online_ac,
    "parallel_ac": parallel_ac,
    "off_policy_ac": off_policy_ac,
}


SOLUTIONS = HERE.parent / "notebooks" / "solutions"
ATTACHMENT = re.compile(r"\(attachment:([\w-]+\.png)\)")


def main(directory: Path = HERE) -> list[Path]:
    """Write every picture as directory/NAME.png; returns the paths."""
    paths = []
    for name, draw in PICTURES.items():
        path = Path(directory) / f"{name}.png"
        draw().savefig(path, metadata={"Software": None})
        paths.append(path)
    return paths


def attachments(cell, directory: Path = HERE) -> dict:
    """The attachments a markdown cell's `attachment:NAME.png` links need, from directory."""
    return {name: {"image/png": base64.b64encode((directory / name).read_bytes()).decode()}
            for name in ATTACHMENT.findall(cell.source)}


def embed(notebooks: Path = SOLUTIONS) -> list[Path]:
    """Store the pictures as attachments of the markdown cells that link them; returns the
    notebooks that changed."""
    changed = []
    for path in sorted(Path(notebooks).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.pop("attachments", None)
                if ATTACHMENT.search(cell.source):
                    cell.attachments = attachments(cell)
        if nbformat.writes(nb) != before:
            nbformat.write(nb, path)
            changed.append(path)
    return changed


if __name__ == "__main__":
    if len(sys.argv) > 1:                                 # a directory to draw into: no embedding
        main(Path(sys.argv[1]))
    else:
        main()
        for path in embed():
            print(f"updated {path}: now run python -m acteach exercises build")
