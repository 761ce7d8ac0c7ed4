"""The parallel lab of notebook 07: A2C's learning curves for each (N envs, T steps per update)
of a grid trained on the same budget, against env steps and against wall-clock seconds.

The runs are trained before the lab is built (`parallel.learning_grid`); a slider move picks
one run and redraws it bold over the others.
"""
from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as W

from acteach._validate import check_positive_int
from acteach.actor_critic import A2CConfig
from acteach.labs._base import BlittedFigure, slider_pair
from acteach.parallel import learning_grid, smoothed


@dataclass(frozen=True)
class RunSummary:
    """One training run of the ParallelLab's grid, in numbers."""

    n_envs: int
    n_steps: int
    updates: int
    env_steps: int
    seconds: float
    final_return: float        # mean of the last `window` episode returns
    best_return: float         # best mean of `window` consecutive episode returns


class ParallelLab:
    """Learning curves of A2C for each (N envs, T steps per update) of a grid.

    histories: (N, T) -> History, e.g. from `acteach.parallel.learning_grid` (same budget, same
    seed); config: the A2CConfig they were trained from, if known (its total_steps is each run's
    budget). Two panels: the mean return of the last `window` episodes against env steps and
    against wall-clock seconds; every run faint, the chosen one bold, the online actor-critic
    (N = T = 1) dashed.
    """

    def __init__(self, histories: dict, window: int = 20, config: A2CConfig | None = None
                 ) -> None:
        check_positive_int("window", window)
        if not histories:
            raise ValueError("histories: expected at least one (n_envs, n_steps) -> History")
        self.histories, self.window, self.config = dict(histories), window, config
        self.n_envs = tuple(sorted({n for n, _ in self.histories}))
        self.n_steps = tuple(sorted({t for _, t in self.histories}))
        self.curves = {key: smoothed(h, window) for key, h in self.histories.items()}
        self._plot: CurvesPlot | None = None

    def _check(self, n_envs: int, n_steps: int) -> tuple[int, int]:
        if (n_envs, n_steps) not in self.histories:
            raise ValueError(f"n_envs, n_steps: expected a pair of the grid "
                             f"{sorted(self.histories)}, got {(n_envs, n_steps)!r}")
        return n_envs, n_steps

    def update(self, n_envs: int, n_steps: int) -> RunSummary:
        """The numbers of the (n_envs, n_steps) run."""
        key = self._check(n_envs, n_steps)
        h, (_, _, mean) = self.histories[key], self.curves[key]
        return RunSummary(n_envs, n_steps, len(h.losses.get("actor_loss", [])), h.env_steps,
                          h.seconds, float(mean[-1]) if len(mean) else float("nan"),
                          float(mean[self.window - 1:].max()) if len(mean) >= self.window
                          else float("nan"))

    def table(self) -> str:
        """Every run of the grid: updates, seconds, final and best mean return."""
        lines = [f"{'N envs':>7}{'T steps':>8}{'batch':>7}{'updates':>9}{'seconds':>9}"
                 f"{'final ret' + str(self.window):>13}{'best ret' + str(self.window):>12}"]
        for key in sorted(self.histories):
            s = self.update(*key)
            lines.append(f"{s.n_envs:>7}{s.n_steps:>8}{s.n_envs * s.n_steps:>7}{s.updates:>9}"
                         f"{s.seconds:>9.1f}{s.final_return:>13.1f}{s.best_return:>12.1f}")
        return "\n".join(lines)

    def readout(self, n_envs: int, n_steps: int) -> str:
        """The numbers of the chosen run, and of the online actor-critic beside it."""
        s, online = self.update(n_envs, n_steps), self.histories.get((1, 1))
        text = (f"N = {n_envs} envs x T = {n_steps} steps: batch {n_envs * n_steps}, "
                f"{s.updates} updates in {s.env_steps} env steps, {s.seconds:.1f} s; mean return "
                f"of the last {self.window} episodes {s.final_return:.1f} "
                f"(best {s.best_return:.1f}).")
        if online is not None and (n_envs, n_steps) != (1, 1):
            o = self.update(1, 1)
            text += (f"\nOnline (N = T = 1): {o.updates} updates, {o.seconds:.1f} s, final "
                     f"{o.final_return:.1f}.")
        return text

    def render(self, n_envs: int, n_steps: int) -> tuple[bytes, str]:
        """PNG bytes of the two panels with (n_envs, n_steps) highlighted, and the readout."""
        key = self._check(n_envs, n_steps)
        if self._plot is None:
            self._plot = CurvesPlot(self.curves, self.window)
        return self._plot.draw(key), self.readout(*key)

    def widget(self, n_envs: int | None = None, n_steps: int | None = None) -> W.VBox:
        """The interactive lab: N envs and T steps sliders, the curves and the readout."""
        n_envs = self.n_envs[-1] if n_envs is None else n_envs
        n_steps = self.n_steps[-1] if n_steps is None else n_steps
        self._check(n_envs, n_steps)

        def draw(n_envs: int, n_steps: int) -> tuple[bytes | None, str]:
            if (n_envs, n_steps) not in self.histories:
                return None, f"(N, T) = {(n_envs, n_steps)} is not in the grid"
            return self.render(n_envs, n_steps)

        return slider_pair(draw, (self.n_envs, n_envs, "N envs"),
                           (self.n_steps, n_steps, "T steps"))


class CurvesPlot(BlittedFigure):
    """ParallelLab's figure: every run faint and drawn once; the chosen run redrawn bold."""

    def __init__(self, curves: dict, window: int) -> None:
        super().__init__((9.5, 3.4), sharey=True, left=0.07, right=0.99, bottom=0.15, top=0.9,
                         wspace=0.06)
        ax_s, ax_t = self.axes
        self.curves = curves
        for key, (steps, seconds, mean) in curves.items():
            style = dict(color="0.2", lw=1.2, ls="--", label="online (N = T = 1)") \
                if key == (1, 1) else dict(color="0.75", lw=0.9)
            ax_s.plot(steps, mean, **style)
            ax_t.plot(seconds, mean, **style)
        ax_s.set(xlabel="env steps", ylabel=f"mean return, last {window} episodes")
        ax_t.set(xlabel="wall-clock seconds")
        # a run that finished no episode has no curve: the limits come from the others (or 1)
        ax_s.set_xlim(0, max([c[0][-1] for c in curves.values() if len(c[0])], default=1))
        ax_t.set_xlim(0, max([c[1][-1] for c in curves.values() if len(c[1])], default=1))
        ax_s.set_ylim(0, max(max([c[2].max() for c in curves.values() if len(c[2])],
                                 default=0.0) * 1.05, 1))
        (self.line_s,) = ax_s.plot([], [], color="tab:red", lw=2.2, animated=True,
                                   label="chosen N x T")
        (self.line_t,) = ax_t.plot([], [], color="tab:red", lw=2.2, animated=True)
        ax_s.legend(fontsize=8, frameon=False, loc="upper left")
        self.title = ax_t.text(0.98, 0.04, "", transform=ax_t.transAxes, ha="right",
                               fontsize=9, animated=True)
        self.freeze()

    def artists(self, key: tuple[int, int]):
        """The chosen run, bold, on both panels."""
        steps, seconds, mean = self.curves[key]
        self.line_s.set_data(steps, mean)
        self.line_t.set_data(seconds, mean)
        self.title.set_text(f"N = {key[0]}, T = {key[1]}" if len(mean) else
                            f"N = {key[0]}, T = {key[1]}: no episode finished")
        yield from (self.line_s, self.line_t, self.title)


def notebook07_lab() -> ParallelLab:
    """Notebook 07's lab: A2C on CartPole trained for every (N envs, T steps) in
    {1, 4, 16} x {1, 4, 16}, 2,000 env steps each, seed 0 (it trains the nine runs: about half
    a minute), curves averaged over the last 20 episodes."""
    config = A2CConfig(total_steps=2_000, seed=0)
    return ParallelLab(learning_grid(config, n_envs=(1, 4, 16), n_steps=(1, 4, 16)), window=20,
                       config=config)
