"""U-Net decoder variants for the decoder study (``segment_factors.py``, ``segment_vs_smp.py
--options decoder=...``): the differences between the earlier segment U-Net (``unet-transposed``) and
smp's layout, one at a time and all three (``unet-smp``, the layout ``unet`` has now), registered as
decoders of this process. Importing this module registers them."""

from __future__ import annotations

from functools import partial

from transferlab.dense import DECODERS, SMP_LAYOUT, logits_unet

#: name -> the U-Net's arguments that differ from the earlier layout (``unet-transposed``).
VARIANTS: dict[str, dict[str, object]] = {
    "unet-nearest": {"upsample": "nearest"},
    "unet-nocentre": {"centre": False},
    "unet-noinput": {"input_skip": False},
    "unet-smp": SMP_LAYOUT,
}

for _name, _layout in VARIANTS.items():
    DECODERS.setdefault(_name, partial(logits_unet, **_layout))
