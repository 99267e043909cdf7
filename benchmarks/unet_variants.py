"""U-Net decoder variants for the decoder study (``segment_factors.py``, ``segment_vs_smp.py
--options decoder=...``): the differences between the earlier segment U-Net (``unet-transposed``) and
smp's layout, one at a time and all three (``unet-smp``, the layout ``unet`` has now), registered as
decoders of this process. Importing this module registers them."""

from __future__ import annotations

from transferlab.dense import DECODERS, UNet

#: name -> the U-Net's arguments that differ from the earlier layout (``unet-transposed``).
VARIANTS: dict[str, dict[str, object]] = {
    "unet-nearest": {"upsample": "nearest"},
    "unet-nocentre": {"centre": False},
    "unet-noinput": {"input_skip": False},
    "unet-smp": {"upsample": "nearest", "centre": False, "input_skip": False},
}


def _register(name: str, changes: dict[str, object]) -> None:
    def build(backbone, in_channels, img_size, width, pretrained, out_channels):
        return UNet(backbone, in_channels, img_size, width, pretrained, out_channels,
                    full_width=max(8, width // 2), **changes)  # fmt: skip

    DECODERS.setdefault(name, build)


for _name, _changes in VARIANTS.items():
    _register(_name, _changes)
