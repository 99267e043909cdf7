r"""Transferability scores: how well a frozen feature extractor suits a labelled dataset,
without fine-tuning.

LogME (You et al., ICML 2021): for features :math:`F \in \mathbb{R}^{n \times d}` and each class
:math:`k`'s one-hot target :math:`y_k`, the log marginal evidence of Bayesian linear regression
:math:`y_k = F w + \epsilon`, :math:`w \sim \mathcal{N}(0, \alpha^{-1} I)`, :math:`\epsilon \sim
\mathcal{N}(0, \beta^{-1} I)`, maximised over :math:`\alpha, \beta` by the fixed-point updates

.. math::
    \gamma = \sum_i \frac{\beta\sigma_i}{\alpha + \beta\sigma_i}, \quad
    \alpha \leftarrow \frac{\gamma}{m^\top m}, \quad
    \beta \leftarrow \frac{n - \gamma}{\lVert F m - y_k \rVert^2}

(:math:`\sigma_i` the eigenvalues of :math:`F^\top F`, :math:`m` the posterior mean), then
:math:`\mathcal{L} = \tfrac{d}{2}\log\alpha + \tfrac{n}{2}\log\beta - \tfrac{1}{2}\sum_i
\log(\alpha + \beta\sigma_i) - \tfrac{\beta}{2}\lVert F m - y_k\rVert^2 - \tfrac{\alpha}{2} m^\top m
- \tfrac{n}{2}\log 2\pi`, divided by :math:`n` and averaged over classes. Higher is better.

Written here because no maintained library ships it (the authors' reference code is a script).
"""

from __future__ import annotations

import numpy as np

from transferlab.metrics import register


def _class_evidence(u: np.ndarray, sigma: np.ndarray, y: np.ndarray, n: int, d: int) -> float:
    x = u.T @ y  # the target in the singular basis
    x2 = x**2
    outside = float(y @ y - x2.sum())  # energy of y outside the span of F
    alpha, beta = 1.0, 1.0
    for _ in range(100):
        t = alpha / beta
        gamma = float((sigma / (sigma + t)).sum())
        m2 = float((sigma * x2 / (t + sigma) ** 2).sum())
        res2 = float((x2 / (1 + sigma / t) ** 2).sum()) + outside
        alpha, beta = gamma / (m2 + 1e-12), (n - gamma) / (res2 + 1e-12)
        if abs(alpha / beta - t) / t < 1e-3:
            break
    log_det = float(np.log(alpha + beta * sigma).sum()) + (d - len(sigma)) * np.log(alpha)
    evidence = (
        d / 2 * np.log(alpha) + n / 2 * np.log(beta) - log_det / 2
        - beta / 2 * res2 - alpha / 2 * m2 - n / 2 * np.log(2 * np.pi)
    )  # fmt: skip
    return float(evidence / n)


@register("logme")
def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME of ``features`` (n x d) for integer ``labels`` (n,): mean per-class evidence per sample."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s**2
    return float(np.mean([_class_evidence(u, sigma, (y == k).astype(np.float64), n, d) for k in np.unique(y)]))


SCORES = {"logme": logme}
