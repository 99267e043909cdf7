"""Classify's side of the transfer strategies (``transferlab/strategies.py``, the registry every
task shares): its parameter groups (timm's coarse groups: stem, the stages of blocks, and last the
classifier head) and the freezing a strategy asks for."""

from __future__ import annotations

from torch import nn

from transferlab.strategies import CLASSIFY, Strategy, names_for
from transferlab.strategies import STRATEGIES as ALL
from transferlab.strategies import get_strategy as get_any

__all__ = ["STRATEGIES", "Strategy", "apply_freezing", "freeze_batchnorm_of_frozen", "get_strategy",
           "parameter_groups"]  # fmt: skip

#: The strategies classify offers (those of the shared registry that name it).
STRATEGIES: dict[str, Strategy] = {name: ALL[name] for name in names_for(CLASSIFY)}


def get_strategy(name: str) -> Strategy:
    return get_any(name, CLASSIFY)


def parameter_groups(model: nn.Module) -> list[list[str]]:
    """Parameter names per coarse stage, bottom (stem) to top (classifier head)."""
    from timm.models import group_parameters

    matcher = model.group_matcher(coarse=True) if hasattr(model, "group_matcher") else None
    if matcher is None:
        names = [n for n, _ in model.named_parameters()]
        return [names]
    grouped = group_parameters(model, matcher)
    return [grouped[k] for k in sorted(grouped)]


def apply_freezing(model: nn.Module, groups: list[list[str]], trainable: int) -> int:
    """Train only the top ``trainable`` groups; frozen BatchNorm layers stay in eval mode.

    Returns the number of trainable parameters.
    """
    frozen_names = {name for group in groups[: len(groups) - trainable] for name in group}
    count = 0
    for name, param in model.named_parameters():
        param.requires_grad_(name not in frozen_names)
        count += param.numel() if param.requires_grad else 0
    return count


def freeze_batchnorm_of_frozen(model: nn.Module) -> None:
    """Call after ``model.train()``: a norm layer whose parameters are all frozen keeps its
    running statistics (so a frozen body behaves exactly as pretrained)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters())
            if params and not any(p.requires_grad for p in params):
                module.eval()
