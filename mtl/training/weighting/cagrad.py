"""CAGrad, conflict-averse gradient descent (Liu, Liu, Jin, Stone & Liu, NeurIPS 2021).

Looks, within a ball of radius ``c * ||g0||`` around the mean gradient ``g0``, for the update that
maximises the worst task's improvement. Its dual is a small problem over the simplex,
``min_w  g_w . g0 + c ||g0|| ||g_w||`` with ``g_w = sum_i w_i g_i``, whose solution gives
``d = g0 + c ||g0|| / ||g_w|| * g_w``, rescaled by ``1 / (1 + c^2)`` as in the authors' code.
c = 0 is the mean gradient; ``c`` is ``train.weighting.cagrad_c`` (0.4 in the paper's
multi-task experiments). Applied to the gradients w.r.t. the shared representation (see
``RepGradWeighting``); the dual only needs the (tasks x tasks) Gram matrix.
"""

from __future__ import annotations

import numpy as np
import torch

from mtl.training.weighting.base import RepGradWeighting


class CAGrad(RepGradWeighting):
    def combine(self, grads, present):
        return cagrad(grads, self.cfg.cagrad_c), {}


def cagrad(grads: torch.Tensor, c: float) -> torch.Tensor:
    """(tasks, n) gradients -> (n,) the conflict-averse update."""
    g0 = grads.mean(0)
    gram = (grads @ grads.T).double().cpu().numpy()
    scale = gram.mean()  # = ||g0||^2
    if c == 0 or scale <= 0:
        return g0
    a = gram / scale  # O(1) entries: the solver's step sizes need no tuning
    w = simplex_minimise(a, c)
    gw = torch.from_numpy(w).to(grads) @ grads
    lam = float(c / (np.sqrt(max(w @ a @ w, 0.0)) + 1e-8))  # c ||g0|| / ||g_w||, free of the gradients' scale
    return (g0 + lam * gw) / (1 + c**2)


def simplex_minimise(a: np.ndarray, c: float, iters: int = 500, tol: float = 1e-6) -> np.ndarray:
    """argmin over the simplex of ``w . a . 1/t + c sqrt(w . a . w)`` (``a`` a normalised Gram matrix).

    Accelerated projected gradient (FISTA) with backtracking and adaptive restart: the problem is
    convex with a handful of variables, so this needs no solver dependency. Acceleration matters
    when two tasks nearly oppose each other: the optimum then sits where ``g_w`` is almost 0 and
    the square root is very curved, and plain projected gradient crawls. Stops when the gradient
    mapping (the projected step's length over the step size) is below ``tol``.
    """
    b = a.mean(1)

    def f(w):
        return w @ b + c * np.sqrt(max(w @ a @ w, 0.0) + 1e-12)

    def grad(w):
        aw = a @ w
        return b + c * aw / np.sqrt(max(w @ aw, 0.0) + 1e-12)

    w = np.full(len(a), 1.0 / len(a))
    y, fw, momentum, step = w.copy(), f(w), 1.0, 1.0
    for _ in range(iters):
        gy, fy = grad(y), f(y)
        while True:  # backtracking: shrink the step until the quadratic upper bound holds
            cand = _project_simplex(y - step * gy)
            diff = cand - y
            fc = f(cand)
            if fc <= fy + gy @ diff + diff @ diff / (2 * step) or step < 1e-14:
                break
            step /= 2
        if np.sqrt(diff @ diff) / step < tol:
            return cand if fc <= fw else w
        if fc > fw:  # the momentum overshot: restart from the best point
            y, momentum = w.copy(), 1.0
            continue
        nxt = (1 + np.sqrt(1 + 4 * momentum**2)) / 2
        y = cand + (momentum - 1) / nxt * (cand - w)
        w, fw, momentum, step = cand, fc, nxt, step * 1.2
    return w


def _project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto {w >= 0, sum w = 1} (Duchi et al., 2008)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1
    rho = np.nonzero(u - css / np.arange(1, len(v) + 1) > 0)[0][-1]
    return np.maximum(v - css[rho] / (rho + 1), 0.0)
