"""Segmentation losses, each an ``nn.Module`` of logits (N x C x H x W) and targets (N x H x W class
indices, ``ignore_index`` for void pixels, which no term counts).

- Cross-entropy: :math:`-\\frac{1}{|P|} \\sum_{p \\in P} w_{y_p} \\log \\mathrm{softmax}(z_p)_{y_p}`
  over labelled pixels P, with optional class weights w.
- Soft Dice (Milletari et al. 2016):
  :math:`1 - \\mathrm{mean}_{c \\in C'} (2 \\sum_p s_{pc} t_{pc} + \\epsilon) / (\\sum_p (s_{pc} + t_{pc}) + \\epsilon)`
  s the softmax, t the one-hot target, over the classes C' present in the batch's truth (an
  absent class would only reward predicting nothing).
- Focal (Lin et al. 2017): :math:`-\\frac{1}{|P|} \\sum_p (1 - q_p)^\\gamma \\log q_p`, q_p the softmax
  of the true class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossEntropy(nn.Module):
    def __init__(self, ignore_index: int, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), target, weight=self.weight, ignore_index=self.ignore_index)


class Dice(nn.Module):
    def __init__(self, ignore_index: int, eps: float = 1.0) -> None:
        super().__init__()
        self.ignore_index, self.eps = ignore_index, eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labelled = (target != self.ignore_index).unsqueeze(1)
        scores = logits.float().softmax(1) * labelled
        onehot = F.one_hot(target.clamp(0, logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2) * labelled
        intersection, total = (scores * onehot).sum((0, 2, 3)), (scores + onehot).sum((0, 2, 3))
        present = onehot.sum((0, 2, 3)) > 0
        dice = (2 * intersection + self.eps) / (total + self.eps)
        return 1 - dice[present].mean() if present.any() else logits.sum() * 0


class Focal(nn.Module):
    def __init__(self, ignore_index: int, gamma: float = 2.0) -> None:
        super().__init__()
        self.ignore_index, self.gamma = ignore_index, gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_q = -F.cross_entropy(logits.float(), target, ignore_index=self.ignore_index, reduction="none")
        labelled = target != self.ignore_index
        terms = -((1 - log_q.exp()) ** self.gamma) * log_q
        return terms[labelled].mean() if labelled.any() else logits.sum() * 0


TERMS: dict[str, type[nn.Module]] = {"ce": CrossEntropy, "dice": Dice, "focal": Focal}


class SegmentationLoss(nn.Module):
    """The sum of the named terms (``ce+dice``, the default: CE for calibrated per-pixel classes,
    Dice against the imbalance of small structures)."""

    def __init__(self, names: str, ignore_index: int, class_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        parts = {}
        for name in names.split("+"):
            parts[name] = CrossEntropy(ignore_index, class_weights) if name == "ce" else TERMS[name](ignore_index)
        self.terms = nn.ModuleDict(parts)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(term(logits, target) for term in self.terms.values())
