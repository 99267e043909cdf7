"""Transfer strategies: which stages of the network train, and at what learning rate.

The network is cut into timm's coarse parameter groups (``model.group_matcher(coarse=True)``):
stem, the stages of blocks, and last the classifier head. A strategy answers two questions per
group: its learning-rate scale, and from which epoch on it trains. A new strategy is one more
registered :class:`Strategy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from transferlab.errors import UsageError


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    pretrained: bool
    lr_scales: Callable[[int, dict], list[float]]  # (number of groups, options) -> scale per group
    trainable_groups: Callable[[int, int, int], int]  # (epoch, epochs, groups) -> how many top groups train
    cached_features: bool = False


STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    STRATEGIES[strategy.name] = strategy
    return strategy


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise UsageError(f"unknown strategy '{name}'", f"use one of: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def _all(epoch: int, epochs: int, groups: int) -> int:
    return groups


def _head_only(epoch: int, epochs: int, groups: int) -> int:
    return 1


def _body_lower(groups: int, options: dict) -> list[float]:
    return [options["body_lr_mult"]] * (groups - 1) + [1.0]


def _gradual(epoch: int, epochs: int, groups: int) -> int:
    """Head alone for the first share of epochs, then one more stage (top down) per share."""
    share = max(1, epochs // groups)
    return min(groups, 1 + epoch // share)


register(
    Strategy(
        "linear",
        "frozen pretrained body, head trained on cached features",
        True,
        lambda g, o: [1.0] * g,
        _head_only,
        True,
    )
)
register(Strategy("full", "all layers; the body at --body-lr-mult x the head's learning rate", True, _body_lower, _all))
register(
    Strategy("gradual", "head first, then stages unfrozen top-down at equal intervals", True, _body_lower, _gradual)
)
register(
    Strategy(
        "llrd",
        "layer-wise learning-rate decay: stage k from the top trains at --layer-decay^k x the rate",
        True,
        lambda g, o: [o["layer_decay"] ** (g - 1 - i) for i in range(g)],
        _all,
    )
)
register(
    Strategy(
        "scratch",
        "the same network from random initialisation, same budget (the baseline)",
        False,
        lambda g, o: [1.0] * g,
        _all,
    )
)


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
