"""Exercise checkers (notebooks 01-09, one file of checkers per notebook, in course order).

A notebook's check cell calls `checks.check_<function>(fn)`: the checker calls the student's
function on hand-worked and random inputs, compares with the library's reference, and raises a
`CheckFailed` (an AssertionError) whose message names the call, the expected and the got value,
and the mistake where it recognises one. A stub that still raises NotImplementedError gives an
`ExerciseNotImplemented` with a one-line message instead of a traceback into the stub.

`CHECKERS` registers every checker by the name of the exercise's function, in course order:
its reference (the library's function, with the student's signature), a stub, planted mistakes
(each with the hint the checker must give) and other correct solutions. `tests/test_checks.py`
runs one contract over all of them. The shared plumbing is in `checks._core`.
"""
from acteach.checks import (nb01_reward_to_go, nb02_use_q, nb03_baselines, nb04_fitting_v,
                            nb05_discount, nb06_batch_actor_critic, nb07_online_parallel,
                            nb08_off_policy, nb09_beyond_the_lecture)
from acteach.checks._core import Checker, CheckFailed, ExerciseNotImplemented
from acteach.checks.nb01_reward_to_go import check_policy_gradient_surrogate, check_reward_to_go
from acteach.checks.nb02_use_q import check_q_from_v
from acteach.checks.nb03_baselines import check_expected_baseline_term, check_loo_baseline
from acteach.checks.nb04_fitting_v import check_critic_loss
from acteach.checks.nb05_discount import check_discounted_weights
from acteach.checks.nb06_batch_actor_critic import check_actor_critic_losses
from acteach.checks.nb07_online_parallel import check_a2c_update, check_a2c_update_learns
from acteach.checks.nb08_off_policy import (check_actor_loss, check_actor_loss_learns,
                                            check_q_target)
from acteach.checks.nb09_beyond_the_lecture import check_gae

#: Every checker by the name of the exercise's function, in course order.
CHECKERS: dict[str, Checker] = {c.name: c for c in (
    nb01_reward_to_go.REWARD_TO_GO, nb01_reward_to_go.POLICY_GRADIENT_SURROGATE,
    nb02_use_q.Q_FROM_V,
    nb03_baselines.EXPECTED_BASELINE_TERM, nb03_baselines.LOO_BASELINE,
    nb04_fitting_v.CRITIC_LOSS,
    nb05_discount.DISCOUNTED_WEIGHTS,
    nb06_batch_actor_critic.ACTOR_CRITIC_LOSSES,
    nb07_online_parallel.A2C_UPDATE,
    nb08_off_policy.Q_TARGET, nb08_off_policy.ACTOR_LOSS,
    nb09_beyond_the_lecture.GAE,
)}

__all__ = ["CHECKERS", "CheckFailed", "Checker", "ExerciseNotImplemented",
           "check_actor_critic_losses", "check_critic_loss", "check_expected_baseline_term",
           "check_discounted_weights", "check_gae", "check_loo_baseline",
           "check_policy_gradient_surrogate", "check_q_from_v", "check_q_target",
           "check_reward_to_go", "check_a2c_update", "check_a2c_update_learns", "check_actor_loss",
           "check_actor_loss_learns"]
