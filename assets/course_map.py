"""Draws assets/course_map.png: the notebooks in order, each with the weight w_t it introduces.

    python assets/course_map.py
"""
import textwrap
from pathlib import Path

from matplotlib.figure import Figure

STEPS = [
    ("01 reward-to-go", "w = sum_{t'>=t} r"),
    ("02 use Q", "w = Q(s,a): exact, or k rollouts"),
    ("03 baselines", "w = Q_hat - b(s),  A = Q - V"),
    ("04 fitting V", "MC vs bootstrapped targets, SG"),
    ("05 discount", "gamma: option 1 vs option 2"),
    ("06 batch actor-critic", "w = r + gamma V(s') - V(s)"),
    ("07 online & parallel", "A2C on vector envs"),
    ("08 off-policy", "replay buffer, learn Q"),
    ("09 beyond", "n-step, GAE, control variates"),
]


def main() -> None:
    fig = Figure(figsize=(11, 2.6), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set(xlim=(0, 9), ylim=(0, 1))
    ax.axis("off")
    for i, (title, weight) in enumerate(STEPS):
        done = i < 5
        ax.add_patch(_box(i, done))
        number, name = title.split(" ", 1)
        ax.text(i + 0.5, 0.66, number + "\n" + "\n".join(textwrap.wrap(name, 12)),
                ha="center", va="center", fontsize=9, weight="bold")
        ax.text(i + 0.5, 0.27, "\n".join(textwrap.wrap(weight, 16)), ha="center", va="center",
                fontsize=7.5, color="0.2")
        if i < len(STEPS) - 1:
            ax.annotate("", xy=(i + 1.05, 0.5), xytext=(i + 0.95, 0.5),
                        arrowprops=dict(arrowstyle="->", color="0.4"))
    ax.text(0.05, 0.95, "g_hat = (1/N) sum_n sum_t grad log pi(a_t|s_t) * w_t  (one estimator, "
            "many weights; every one measured against the exact gradient)", fontsize=9,
            va="top")
    fig.savefig(Path(__file__).with_name("course_map.png"))


def _box(i: int, done: bool):
    from matplotlib.patches import FancyBboxPatch
    return FancyBboxPatch((i + 0.06, 0.1), 0.88, 0.72, boxstyle="round,pad=0.0,rounding_size=0.05",
                          facecolor="#dbe9f6" if done else "#f2f2f2",
                          edgecolor="#2b6cb0" if done else "0.6", lw=1.2)


if __name__ == "__main__":
    main()
