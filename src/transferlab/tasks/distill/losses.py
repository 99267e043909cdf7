"""Distillation losses: what the student learns from the teacher's logits, one ``nn.Module`` each.

Both take the student's and the teacher's logits for the same batch of images (N x C) and return
a scalar. The teacher's logits carry no gradient. Neither module has parameters, so a
data-parallel run needs nothing beyond the student's own gradient averaging.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class HintonKD(nn.Module):
    r"""Knowledge distillation (Hinton, Vinyals and Dean 2015).

    .. math::
        L_{KD} = T^2 \, \frac{1}{N} \sum_i \mathrm{KL}\big(\mathrm{softmax}(t_i / T) \,\|\,
                 \mathrm{softmax}(s_i / T)\big)

    where :math:`s_i, t_i` are the student's and the teacher's logits and :math:`T` the
    temperature. The :math:`T^2` keeps the gradients' scale independent of :math:`T`.
    """

    def __init__(self, temperature: float = 4.0) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        log_p_student = F.log_softmax(student / t, dim=1)
        log_p_teacher = F.log_softmax(teacher / t, dim=1)
        return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True) * t * t


def _pearson_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - the Pearson correlation of the rows of ``a`` and ``b``, averaged over the rows."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return 1 - F.cosine_similarity(a, b, dim=1, eps=1e-8).mean()


class DIST(nn.Module):
    r"""DIST: distillation from a stronger teacher by relations (Huang et al., NeurIPS 2022).

    Exact probabilities are hard to match for a student much smaller than its teacher; DIST asks
    only that the student *rank* like the teacher, with the Pearson correlation as the match:

    .. math::
        P = \mathrm{softmax}(s / T), \quad Q = \mathrm{softmax}(t / T) \qquad (N \times C) \\
        L_{inter} = \frac{1}{N} \sum_i \big(1 - \rho(P_{i,:}, Q_{i,:})\big) \qquad
        L_{intra} = \frac{1}{C} \sum_c \big(1 - \rho(P_{:,c}, Q_{:,c})\big) \\
        L_{DIST} = T^2 \, (\beta L_{inter} + \gamma L_{intra})

    :math:`L_{inter}`: per image, the classes in the teacher's order; :math:`L_{intra}`: per
    class, the images of the batch in the teacher's order. The paper's :math:`\beta = \gamma = 1`,
    :math:`T = 1` are the defaults. :math:`L_{intra}` is a statistic of the batch: in a
    data-parallel run each process takes it over its own share, as the paper's code does.
    """

    def __init__(self, temperature: float = 1.0, beta: float = 1.0, gamma: float = 1.0) -> None:
        super().__init__()
        self.temperature, self.beta, self.gamma = temperature, beta, gamma

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        p, q = F.softmax(student / t, dim=1), F.softmax(teacher / t, dim=1)
        inter = _pearson_distance(p, q)
        intra = _pearson_distance(p.T, q.T) if len(p) > 1 else p.new_zeros(())
        return t * t * (self.beta * inter + self.gamma * intra)


#: ``--method``: name -> the loss, made from ``--temperature`` (None: the method's own default).
METHODS: dict[str, Callable[[float | None], nn.Module]] = {
    "kd": lambda temperature: HintonKD(4.0 if temperature is None else temperature),
    "dist": lambda temperature: DIST(1.0 if temperature is None else temperature),
}
