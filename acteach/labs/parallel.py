"""The parallel lab of notebook 07: A2C's learning curves for each (N envs, T steps per update)
of a grid trained on one budget with several seeds, against env steps and against wall-clock
seconds.

The runs come from the stored sweep (`parallel.load_grid`, written by
assets/parallel_grid_sweep.py) or from `parallel.learning_grid`; a slider move picks one cell
and redraws its seeds over the other cells' means.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import ipywidgets as W
import numpy as np

from acteach.labs._base import BlittedFigure, slider_pair
from acteach.parallel import GridRun, cell_ci, grid_cells, grid_steps, load_grid


@dataclass(frozen=True)
class CellSummary:
    """One cell of the grid over its seeds: means and 95% confidence half-widths."""

    n_envs: int
    n_steps: int
    seeds: int
    updates: float             # mean over the seeds
    final_return: tuple[float, float]    # mean return of the last episodes: (mean, CI half-width)
    seconds: tuple[float, float]         # wall-clock training seconds: (mean, CI half-width)


def _nanmean(curves: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():          # steps before any seed finished an episode: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(curves, axis=0)


class ParallelLab:
    """Learning curves of A2C for each (N envs, T steps per update) of a grid, several seeds.

    runs: GridRuns of the grid (`parallel.learning_grid` or the stored sweep); at_steps: the env
    steps of their curves (`parallel.grid_steps`). Two panels: the mean return of the last
    episodes against env steps and against wall-clock seconds; every cell's mean over seeds
    faint, the online actor-critic (N = T = 1) dashed, the chosen cell's seeds and their mean
    bold.
    """

    def __init__(self, runs: Sequence[GridRun], at_steps: np.ndarray) -> None:
        if not runs:
            raise ValueError("runs: expected at least one GridRun of the grid")
        self.at_steps = np.asarray(at_steps, dtype=float)
        bad = [r for r in runs if len(r.curve) != len(self.at_steps)]
        if bad:
            raise ValueError(f"at_steps: expected one step per point of the runs' curves, got "
                             f"{len(self.at_steps)} steps for the {len(bad[0].curve)} points "
                             f"of the run {bad[0].key}")
        self.cells = grid_cells(runs)
        self.n_envs = tuple(sorted({n for n, _ in self.cells}))
        self.n_steps = tuple(sorted({t for _, t in self.cells}))
        self._plot: CurvesPlot | None = None

    def _check(self, n_envs: int, n_steps: int) -> tuple[int, int]:
        if (n_envs, n_steps) not in self.cells:
            raise ValueError(f"n_envs, n_steps: expected a pair of the grid "
                             f"{sorted(self.cells)}, got {(n_envs, n_steps)!r}")
        return n_envs, n_steps

    def update(self, n_envs: int, n_steps: int) -> CellSummary:
        """The numbers of the (n_envs, n_steps) cell."""
        runs = self.cells[self._check(n_envs, n_steps)]
        return CellSummary(n_envs, n_steps, len(runs), float(np.mean([r.updates for r in runs])),
                           cell_ci(runs, "final_return"), cell_ci(runs, "seconds"))

    def table(self) -> tuple[list[list], list[str]]:
        """(rows, columns) of every cell, for `display.table`: a (mean, CI) pair shows as
        'mean ± CI'."""
        rows = []
        for key in sorted(self.cells):
            s = self.update(*key)
            rows.append([s.n_envs, s.n_steps, s.n_envs * s.n_steps, round(s.updates),
                         s.final_return, s.seconds])
        return rows, ["N envs", "T steps", "batch N x T", "updates",
                      "final return (95% CI)", "seconds (95% CI)"]

    def readout(self, n_envs: int, n_steps: int) -> str:
        """The numbers of the chosen cell, and of the online actor-critic beside it."""
        s = self.update(n_envs, n_steps)
        text = (f"N = {n_envs} envs x T = {n_steps} steps: batch {n_envs * n_steps}, "
                f"{s.updates:,.0f} updates; final return {s.final_return[0]:.1f} ± "
                f"{s.final_return[1]:.1f}, {s.seconds[0]:.1f} ± {s.seconds[1]:.1f} s "
                f"(mean ± 95% CI over {s.seeds} seeds).")
        if (1, 1) in self.cells and (n_envs, n_steps) != (1, 1):
            o = self.update(1, 1)
            text += (f"\nOnline (N = T = 1): {o.updates:,.0f} updates, final return "
                     f"{o.final_return[0]:.1f} ± {o.final_return[1]:.1f}, "
                     f"{o.seconds[0]:.1f} ± {o.seconds[1]:.1f} s.")
        return text

    def render(self, n_envs: int, n_steps: int) -> tuple[bytes, str]:
        """PNG bytes of the two panels with (n_envs, n_steps) highlighted, and the readout."""
        key = self._check(n_envs, n_steps)
        if self._plot is None:
            self._plot = CurvesPlot(self.cells, self.at_steps)
        return self._plot.draw(key), self.readout(*key)

    def widget(self, n_envs: int | None = None, n_steps: int | None = None) -> W.VBox:
        """The interactive lab: N envs and T steps sliders, the curves and the readout."""
        n_envs = self.n_envs[-1] if n_envs is None else n_envs
        n_steps = self.n_steps[-1] if n_steps is None else n_steps
        self._check(n_envs, n_steps)

        def draw(n_envs: int, n_steps: int) -> tuple[bytes | None, str]:
            if (n_envs, n_steps) not in self.cells:
                return None, f"(N, T) = {(n_envs, n_steps)} is not in the grid"
            return self.render(n_envs, n_steps)

        return slider_pair(draw, (self.n_envs, n_envs, "N envs"),
                           (self.n_steps, n_steps, "T steps"))


class CurvesPlot(BlittedFigure):
    """ParallelLab's figure: every cell's mean over seeds faint and drawn once; the chosen
    cell's seeds (thin) and their mean (bold) redrawn."""

    def __init__(self, cells: dict[tuple[int, int], list[GridRun]], at_steps: np.ndarray
                 ) -> None:
        super().__init__((9.5, 3.4), sharey=True, left=0.07, right=0.99, bottom=0.15, top=0.9,
                         wspace=0.06)
        ax_s, ax_t = self.axes
        self.cells, self.at_steps = cells, at_steps
        self.means = {key: (_nanmean(np.array([r.curve for r in runs])),
                            np.mean([r.curve_seconds for r in runs], axis=0))
                      for key, runs in cells.items()}
        for key, (curve, seconds) in self.means.items():
            style = dict(color="0.2", lw=1.2, ls="--", label="online (N = T = 1), mean") \
                if key == (1, 1) else dict(color="0.75", lw=0.9)
            ax_s.plot(at_steps, curve, **style)
            ax_t.plot(seconds, curve, **style)
        ax_s.set(xlabel="env steps", ylabel="mean return, last 20 episodes")
        ax_t.set(xlabel="wall-clock seconds (log scale)", xscale="log")
        ax_s.set_xlim(0, at_steps[-1])
        seconds = np.concatenate([r.curve_seconds for runs in cells.values() for r in runs])
        ax_t.set_xlim(max(seconds[seconds > 0].min(), 1e-3) if (seconds > 0).any() else 1e-3,
                      max(seconds.max(), 1e-2))
        top = max((np.nanmax(r.curve) for runs in cells.values() for r in runs
                   if np.isfinite(r.curve).any()), default=1.0)
        ax_s.set_ylim(0, max(top * 1.05, 1))
        most = max(len(runs) for runs in cells.values())
        self.seed_lines = [(ax_s.plot([], [], color="tab:red", lw=0.7, alpha=0.6,
                                      animated=True)[0],
                            ax_t.plot([], [], color="tab:red", lw=0.7, alpha=0.6,
                                      animated=True)[0]) for _ in range(most)]
        (self.line_s,) = ax_s.plot([], [], color="tab:red", lw=2.4, animated=True,
                                   label="chosen N x T: seeds and mean")
        (self.line_t,) = ax_t.plot([], [], color="tab:red", lw=2.4, animated=True)
        ax_s.legend(fontsize=8, frameon=False, loc="upper left")
        self.title = ax_t.text(0.98, 0.93, "", transform=ax_t.transAxes, ha="right",
                               fontsize=9, animated=True)
        self.freeze()

    def artists(self, key: tuple[int, int]):
        """The chosen cell, its seeds thin and their mean bold, on both panels."""
        runs = self.cells[key]
        for i, (line_s, line_t) in enumerate(self.seed_lines):
            run = runs[i] if i < len(runs) else None
            line_s.set_data(*((self.at_steps, run.curve) if run else ([], [])))
            line_t.set_data(*((run.curve_seconds, run.curve) if run else ([], [])))
            yield from (line_s, line_t)
        curve, seconds = self.means[key]
        self.line_s.set_data(self.at_steps, curve)
        self.line_t.set_data(seconds, curve)
        self.title.set_text(f"N = {key[0]}, T = {key[1]}, {len(runs)} seeds")
        yield from (self.line_s, self.line_t, self.title)


def notebook07_lab() -> ParallelLab:
    """Notebook 07's lab: the stored sweep of A2C on CartPole for every (N envs, T steps) in
    {1, 4, 16} x {1, 4, 16}, 20,000 env steps, 5 seeds each (assets/parallel_grid_sweep.py)."""
    settings, runs = load_grid()
    return ParallelLab(runs, grid_steps(settings["total_steps"], settings["points"]))
