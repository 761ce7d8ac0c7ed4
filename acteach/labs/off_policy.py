"""The buffer-age lab of notebook 08: how old the replay buffer's data may be, for the naive and
the corrected off-policy actor gradient, exactly on a tabular MDP.

The policy climbed a path of exact gradient steps (`off_policy.learning_path`); the current
policy pi is its end. The buffer holds the data of the policy k updates old ("one old policy"),
or equal shares of the last k + 1 policies' data ("last k+1 mixed", what a FIFO replay buffer
holds), its states weighted by the discounted occupancy (the idealisation) or counted once per
step ("uniform", a real buffer). For every age the lab measures, with `off_policy_report`, each
gradient against grad J by what a step uses: its cosine with grad J and its error at the best
step size, min_c |c g - grad J| / |grad J| = sqrt(1 - cos^2) (a raw error would also count the
scale, which the step size absorbs). Beside them, what differs between buffer and pi: the
states (total variation) and the actions (mean total variation per state).
"""
from __future__ import annotations

from typing import Sequence

import ipywidgets as W
import numpy as np

from acteach.critic import check_table_mdp
from acteach.labs._base import BlittedFigure, check_offered, gradient_logits, lab_box, slider
from acteach.off_policy import WEIGHTINGS, OffPolicyReport, learning_path, off_policy_report
from acteach.plotting import COLORS
from acteach.tabular import TabularMDP, random_mdp

BUFFERS = ("one old policy", "last k+1 mixed")


class OffPolicyLab:
    """The buffer-age lab: the error of the naive and the corrected gradient against the age k
    of the buffer's data, exact.

    mdp: a TabularMDP without a horizon; path: the logits (S, A) of the policy after each
    update, oldest first, path[-1] the current policy; ages: the ages offered (each < len(path)).
    Every (buffer, weighting, age) is measured once, when the lab is built; a slider move only
    redraws.
    """

    AGES = (0, 1, 2, 3, 5, 8, 12, 20, 30, 40)

    def __init__(self, mdp: TabularMDP, path: Sequence[np.ndarray], ages: Sequence[int] = AGES
                 ) -> None:
        check_table_mdp(mdp)
        if len(path) < 1:
            raise ValueError("path: expected at least one logits table, got none")
        self.path = [gradient_logits(mdp, p) for p in path]
        ages = tuple(ages)
        if not ages or any(isinstance(k, bool) or not isinstance(k, (int, np.integer))
                           or not 0 <= k < len(path) for k in ages) or list(ages) != sorted(
                               set(ages)):
            raise ValueError(f"ages: expected increasing integers in [0, {len(path) - 1}] (the "
                             f"path has {len(path)} policies), got {ages!r}")
        self.mdp, self.ages = mdp, ages
        self.reports = {(buffer, weighting): [self._measure(k, buffer, weighting) for k in ages]
                        for buffer in BUFFERS for weighting in WEIGHTINGS}
        self._plot: OffPolicyPlot | None = None

    def _measure(self, age: int, buffer: str, weighting: str) -> OffPolicyReport:
        behaviour = (self.path[-1 - age] if buffer == BUFFERS[0]
                     else np.stack(self.path[len(self.path) - 1 - age:]))
        return off_policy_report(self.mdp, self.path[-1], behaviour, weighting)

    def _check(self, age: int, buffer: str, weighting: str) -> None:
        check_offered("age", age, self.ages)
        check_offered("buffer", buffer, BUFFERS)
        check_offered("weighting", weighting, WEIGHTINGS)

    def update(self, age: int, buffer: str = BUFFERS[0], weighting: str = "discounted"
               ) -> OffPolicyReport:
        """The exact report of a buffer of age k: errors of both critics and both gradients."""
        self._check(age, buffer, weighting)
        return self.reports[buffer, weighting][self.ages.index(age)]

    def readout(self, age: int, buffer: str = BUFFERS[0], weighting: str = "discounted") -> str:
        """The numbers behind the plot, as text."""
        r = self.update(age, buffer, weighting)
        ratio = (r.naive_scale_optimal_error / r.corrected_scale_optimal_error
                 if r.corrected_scale_optimal_error > 1e-12 else float("nan"))
        head = f"{'gradient':<11}{'cos(g, grad J)':>16}{'error at the best scale':>30}"
        return "\n".join([
            f"age k = {age} updates, buffer: {buffer}, states weighted: {weighting}", "",
            head, "-" * len(head),
            f"{'naive':<11}{r.naive_gradient_cosine:>16.4f}{r.naive_scale_optimal_error:>30.4f}",
            f"{'corrected':<11}{r.corrected_gradient_cosine:>16.4f}"
            f"{r.corrected_scale_optimal_error:>30.4f}",
            f"naive / corrected error: {ratio:.1f}" if np.isfinite(ratio) else
            "naive / corrected error: both exact",
            "", f"buffer vs pi: states TV {r.state_distribution_gap:.3f}, actions TV "
                f"{r.action_distribution_gap:.3f};  max |V_naive - V^pi| = "
                f"{r.naive_v_error:.3f}, max |Q_corrected - Q^pi| = {r.corrected_q_error:.0e}"])

    def render(self, age: int, buffer: str = BUFFERS[0], weighting: str = "discounted"
               ) -> tuple[bytes, str]:
        """PNG bytes of the two panels and the readout text."""
        self._check(age, buffer, weighting)
        if self._plot is None:
            self._plot = OffPolicyPlot(self)
        return self._plot.draw(age, buffer, weighting), self.readout(age, buffer, weighting)

    def widget(self, age: int = 20, buffer: str = BUFFERS[0], weighting: str = "discounted"
               ) -> W.VBox:
        """The interactive lab: age and buffer sliders, a weighting slider, two panels, text."""
        self._check(age, buffer, weighting)
        return lab_box([[slider(self.ages, age, "age k"), slider(BUFFERS, buffer, "buffer")],
                        [slider(WEIGHTINGS, weighting, "states")]], self.render)


class OffPolicyPlot(BlittedFigure):
    """Left: the error at the best scale of the naive and the corrected gradient against
    the age k, the current age ringed. Right: what differs between buffer and pi, the states
    and the actions (total variation), against k."""

    def __init__(self, lab: OffPolicyLab) -> None:
        super().__init__((9.5, 3.4), left=0.08, right=0.99, bottom=0.15, top=0.9, wspace=0.25)
        self.lab = lab
        reports = [r for rows in lab.reports.values() for r in rows]
        top = max(max(r.naive_scale_optimal_error for r in reports), 1e-3) * 1.1
        gaps = max(max(r.action_distribution_gap, r.state_distribution_gap) for r in reports)
        ax_e, ax_g = self.axes
        xlim = (-0.5, lab.ages[-1] + 0.5)
        ax_e.set(xlim=xlim, ylim=(0, top), xlabel="age k of the buffer's data (updates)",
                 ylabel="min_c |c g - grad J| / |grad J|")
        ax_g.set(xlim=xlim, ylim=(0, max(gaps, 1e-3) * 1.1), xlabel="age k (updates)",
                 ylabel="total variation, buffer vs pi")
        line = dict(marker="o", ms=4, lw=1.5, animated=True)
        (self.naive,) = ax_e.plot([], [], color=COLORS[3], label="naive (V, buffer actions)",
                                  **line)
        (self.fixed,) = ax_e.plot([], [], color=COLORS[0], label="corrected (Q, fresh actions)",
                                  **line)
        (self.states,) = ax_g.plot([], [], color=COLORS[2], label="states", **line)
        (self.actions,) = ax_g.plot([], [], color=COLORS[4], label="actions (mean per state)",
                                    **line)
        ring = dict(marker="o", ms=12, mfc="none", mec="k", mew=1.5, ls="none", animated=True)
        (self.mark_e,) = ax_e.plot([], [], **ring)
        (self.mark_g,) = ax_g.plot([], [], **ring)
        self.title = ax_e.set_title("", fontsize=9, animated=True)
        ax_e.legend(fontsize=8, frameon=False, loc="upper left")
        ax_g.legend(fontsize=8, frameon=False, loc="upper left")
        self.freeze()

    def artists(self, age: int, buffer: str, weighting: str):
        lab, ages = self.lab, self.lab.ages
        rows = lab.reports[buffer, weighting]
        r = rows[ages.index(age)]
        self.naive.set_data(ages, [x.naive_scale_optimal_error for x in rows])
        self.fixed.set_data(ages, [x.corrected_scale_optimal_error for x in rows])
        self.states.set_data(ages, [x.state_distribution_gap for x in rows])
        self.actions.set_data(ages, [x.action_distribution_gap for x in rows])
        self.mark_e.set_data([age, age], [r.naive_scale_optimal_error,
                                          r.corrected_scale_optimal_error])
        self.mark_g.set_data([age, age], [r.state_distribution_gap, r.action_distribution_gap])
        self.title.set_text(f"{buffer}, states {weighting}: k = {age}")
        yield from (self.naive, self.fixed, self.states, self.actions, self.mark_e, self.mark_g,
                    self.title)


def notebook08_lab() -> OffPolicyLab:
    """Notebook 08's lab: its random MDP (8 states, 3 actions, gamma = 0.9, seed 11), the
    policy after 40 exact gradient steps of 0.2 from logits 0.5 N(0, 1) (seed 0), ages 0..40."""
    mdp = random_mdp(np.random.default_rng(11), n_states=8, n_actions=3, gamma=0.9)
    start = 0.5 * np.random.default_rng(0).normal(size=(mdp.n_states, mdp.n_actions))
    return OffPolicyLab(mdp, learning_path(mdp, start, 40, 0.2))
