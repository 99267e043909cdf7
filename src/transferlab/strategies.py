"""Transfer strategies: one registry for every task with a pretrained encoder (classify, segment,
detect, translate): which parameter groups train, from which epoch on, and at what learning rate.

A task cuts its network into parameter groups, bottom to top: classify into timm's coarse groups
(stem, the stages of blocks, the classifier head), the dense tasks into two (the encoder, then
the decoder or detection head). A strategy answers two questions per group: its learning-rate
scale, and from which epoch on it trains (``trainable_groups``: how many top groups train in an
epoch; a step-counted task such as translate passes its step and steps for the epoch and epochs).
A new strategy is one more registered :class:`Strategy`, with the tasks that offer it.
Torch-free: the options' ``choices`` come from here.

gan is not among the tasks: it has no ImageNet encoder to cut into groups. Its transfer starts
from a whole GAN run of another domain (``--init``) and freezes a count of the discriminator's
lowest blocks (FreezeD's ``--freeze-d K``); its ``--d-features lite0`` is a frozen ImageNet body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from transferlab.errors import UsageError

CLASSIFY, SEGMENT, DETECT, TRANSLATE = "classify", "segment", "detect", "translate"


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    pretrained: bool
    lr_scales: Callable[[int, Mapping[str, Any]], list[float]]  # (groups, options) -> scale per group
    trainable_groups: Callable[[int, int, int], int]  # (epoch, epochs, groups) -> how many top groups train
    tasks: tuple[str, ...]
    cached_features: bool = False  # the frozen body's features computed once (classify's linear probe)

    def body_frozen(self, epoch: int, epochs: int, groups: int) -> bool:
        """Whether only the top group (the head or decoder) trains in ``epoch``."""
        return self.trainable_groups(epoch, epochs, groups) < groups

    def encoder_scale(self, epoch: int, epochs: int, options: Mapping[str, Any]) -> float:
        """A two-group (encoder, rest) network's encoder rate relative to the rest's: 0 while frozen."""
        return 0.0 if self.body_frozen(epoch, epochs, 2) else self.lr_scales(2, options)[0]


STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    STRATEGIES[strategy.name] = strategy
    return strategy


def names_for(task: str) -> tuple[str, ...]:
    """The strategies a task offers, in registration order."""
    return tuple(name for name, strategy in STRATEGIES.items() if task in strategy.tasks)


def get_strategy(name: str, task: str = CLASSIFY) -> Strategy:
    if name not in names_for(task):
        raise UsageError(f"unknown strategy '{name}' for {task}", f"use one of: {', '.join(names_for(task))}")
    return STRATEGIES[name]


def _all(epoch: int, epochs: int, groups: int) -> int:
    return groups


def _head_only(epoch: int, epochs: int, groups: int) -> int:
    return 1


def _same(groups: int, options: Mapping[str, Any]) -> list[float]:
    return [1.0] * groups


def _body_lower(groups: int, options: Mapping[str, Any]) -> list[float]:
    return [options["body_lr_mult"]] * (groups - 1) + [1.0]


def _layer_decay(groups: int, options: Mapping[str, Any]) -> list[float]:
    return [options["layer_decay"] ** (groups - 1 - i) for i in range(groups)]


def _gradual(epoch: int, epochs: int, groups: int) -> int:
    """The top group alone for the first of ``groups + 1`` equal shares of the epochs, then one more
    group (top down) per share: the whole network trains for the last two (an encoder and a
    decoder: the decoder alone for the first third)."""
    share = max(1, epochs // (groups + 1))
    return min(groups, 1 + epoch // share)


register(Strategy("linear", "frozen pretrained body, head trained on cached features", True, _same, _head_only,
                  (CLASSIFY,), cached_features=True))  # fmt: skip
register(Strategy("frozen", "the pretrained body (encoder) left exactly as it was, BatchNorm statistics included; "
                  "the head (decoder) trains on augmented images through it", True, _same, _head_only,
                  (CLASSIFY, SEGMENT, DETECT, TRANSLATE)))  # fmt: skip
register(Strategy("full", "all layers; the body (encoder) at --body-lr-mult (--encoder-lr-mult) x the head's rate",
                  True, _body_lower, _all, (CLASSIFY, SEGMENT, DETECT, TRANSLATE)))  # fmt: skip
register(Strategy("gradual", "the head (decoder) first, then the body's stages unfrozen top-down at equal intervals",
                  True, _body_lower, _gradual, (CLASSIFY, SEGMENT, TRANSLATE)))  # fmt: skip
register(Strategy("llrd", "layer-wise learning-rate decay: stage k from the top trains at --layer-decay^k x the rate",
                  True, _layer_decay, _all, (CLASSIFY,)))  # fmt: skip
register(Strategy("scratch", "the same network from random initialisation, same budget (the baseline)", False,
                  _same, _all, (CLASSIFY, SEGMENT, DETECT, TRANSLATE)))  # fmt: skip
