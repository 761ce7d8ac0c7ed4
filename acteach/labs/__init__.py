"""The interactive labs of notebooks 01-05, 07 and 09, one file per idea.

    variance.py   VarianceLab       estimators against the exact gradient (01, 03)
    q.py          QLab              Q from k rollouts: variance against k and steps (02)
    critic.py     CriticLab         fitting a table V with the three targets (04)
                  CriticBiasLab     what a wrong critic costs the gradient (04)
    discount.py   DiscountLab       gamma against bias and variance (05)
    batch_ac.py   CriticFitLab      how well the critic is fitted against the gradient (06)
    parallel.py   ParallelLab       A2C's curves over N envs x T steps (07)
    gae.py        LambdaLab         n-step and GAE against a wrong critic (09)
    _base.py      the layout, the sliders, the blitted figure and the cache they share

Every lab follows one protocol: `update(*settings)` returns plain numbers (tests call it),
`readout(*settings)` the text under the picture, `render(*settings)` the picture as PNG bytes
with that text, and `widget(**settings)` the ipywidgets a notebook shows. Each lab module also
builds the lab its notebook shows (`variance.notebook01_lab()`, ...), which the notebook and
benchmarks/widgets.py both call. The exact maths a lab shows lives in the topic modules.
"""
from acteach.labs.batch_ac import CriticFitLab
from acteach.labs.critic import CriticBiasLab, CriticLab
from acteach.labs.discount import DiscountLab
from acteach.labs.gae import LambdaLab
from acteach.labs.parallel import ParallelLab
from acteach.labs.q import QLab
from acteach.labs.variance import VarianceLab

__all__ = ["CriticBiasLab", "CriticFitLab", "CriticLab", "DiscountLab", "LambdaLab",
           "ParallelLab", "QLab", "VarianceLab"]
