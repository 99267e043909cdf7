"""L2-SP: keep fine-tuned weights close to their pretrained starting point (Li et al., ICML 2018)."""

from __future__ import annotations

import torch
from torch import nn


class L2SP(nn.Module):
    r"""Starting-point regulariser for fine-tuning.

    .. math::
        \Omega(w) = \frac{\alpha}{2}\,\lVert w_S - w_S^0 \rVert_2^2 + \frac{\beta}{2}\,\lVert w_{\bar S} \rVert_2^2

    where :math:`w_S` are the parameters that exist in the pretrained model (the body), with
    pretrained values :math:`w_S^0`, and :math:`w_{\bar S}` the new ones (the head). With L2-SP
    the body gets no ordinary weight decay: the pull is toward :math:`w^0`, not toward zero.
    """

    def __init__(self, model: nn.Module, body_names: set[str], alpha: float, beta: float = 0.0) -> None:
        super().__init__()
        self.alpha, self.beta = alpha, beta
        self.body_names = body_names
        self.anchors = {n: p.detach().clone() for n, p in model.named_parameters() if n in body_names}

    def forward(self, model: nn.Module) -> torch.Tensor:
        body, head = [], []
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            if name in self.anchors:
                anchor = self.anchors[name]
                if anchor.device != param.device:
                    anchor = self.anchors[name] = anchor.to(param.device)
                body.append((param - anchor).pow(2).sum())
            elif self.beta:
                head.append(param.pow(2).sum())
        zero = next(model.parameters()).new_zeros(())
        return 0.5 * self.alpha * (torch.stack(body).sum() if body else zero) + 0.5 * self.beta * (
            torch.stack(head).sum() if head else zero
        )
