"""The one batch drawer of every task: (seed, step, rank, world size) -> this process's share of
the global batch, for image indices, latents, labels, crops, flips and noise alike.

Every random draw is made for the *whole* global batch from a generator seeded by (seed, step)
alone, then each process keeps rows ``rank, rank + world, ...`` of it. So N processes together
train on exactly the batch one process would, the ranks' shares are disjoint, and a resumed run
draws what the uninterrupted one would have. Drawing the few numbers of the whole batch on every
rank costs nothing next to a forward pass; only the share's images are decoded and augmented.

    draw = BatchDraw.for_step(opts.seed, step, opts.batch_size, fabric)
    index = draw.indices(len(images))      # this rank's images
    z = draw.normal(z_dim)                 # and its latents
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from transferlab.engine.rng import step_generator


def rank_and_world(fabric: Any) -> tuple[int, int]:
    """(global rank, world size) of a Fabric, or (0, 1) without one."""
    return int(getattr(fabric, "global_rank", 0)), int(getattr(fabric, "world_size", 1))


def share(values: Any, rank: int, world: int) -> Any:
    """Rows ``rank::world`` of a global batch (a tensor, array or list): this process's share."""
    return values[rank::world]


@dataclass
class BatchDraw:
    """The random draws of one global batch of ``batch_size`` rows, seen from one process: each
    method draws for all rows and returns this process's share."""

    generator: torch.Generator
    batch_size: int
    rank: int = 0
    world: int = 1

    @classmethod
    def for_step(cls, seed: int, step: int, batch_size: int, fabric: Any = None) -> BatchDraw:
        rank, world = rank_and_world(fabric)
        return cls(step_generator(seed, step), batch_size, rank, world)

    @classmethod
    def local(cls, batch_size: int) -> BatchDraw:
        """Draws from the global CPU generator for a batch that is not shared (evaluation, tests)."""
        return cls(torch.default_generator, batch_size)

    def share(self, values: Any) -> Any:
        return share(values, self.rank, self.world)

    def indices(self, population: int) -> torch.Tensor:
        """An index into ``population`` items per row, drawn with replacement."""
        return self.share(torch.randint(population, (self.batch_size,), generator=self.generator))

    def uniform(self, *shape: int) -> torch.Tensor:
        return self.share(torch.rand(self.batch_size, *shape, generator=self.generator))

    def normal(self, *shape: int) -> torch.Tensor:
        return self.share(torch.randn(self.batch_size, *shape, generator=self.generator))

    def integers(self, low: int, high: int, *shape: int) -> torch.Tensor:
        return self.share(torch.randint(low, high, (self.batch_size, *shape), generator=self.generator))

    def flips(self) -> torch.Tensor:
        """True where a row is mirrored (probability 1/2)."""
        return self.uniform().lt(0.5)


def flip_where(flip: torch.Tensor, *images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Mirror the images (N x C x H x W) where ``flip`` is True; the same flip for each tensor."""
    mask = flip.to(images[0].device).view(-1, 1, 1, 1)
    return tuple(torch.where(mask, x.flip(-1), x) for x in images)
