"""Dynamic ReLU driven by a global token, as in Mobile-Former (arXiv 2108.05895).

Mobile-Former's variant of DY-ReLU (arXiv 2003.10027): two linear pieces, no intercepts, and the
coefficients come from the first global token instead of pooled features.
"""

import torch
from torch import nn

from effvid.models.layers.tokens import first_token, is_per_frame


class DynamicReLU(nn.Module):
    """y = max(a1 * x, a2 * x) per channel, with (a1, a2) computed from a token.

    The hyper-function maps the token (B, D) through D -> D/reduction -> 2C to theta in [0, 1];
    the first C outputs give a1 = 2*theta in [0, 2], the last C give a2 = 2*theta - 1 in [-1, 1].
    With small initial weights theta ~ 0.5, so the activation starts as a plain ReLU.

    x: (B, C, *spatial), tokens: (B, M, D) -> (B, C, *spatial); the coefficients come from
    token 0 and are broadcast over all spatial (and temporal) positions. With tokens per frame,
    x (B, C, T, H, W) and tokens (B, T, M, D), each frame gets its own coefficients.
    """

    def __init__(self, token_dim: int, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.channels = channels
        self.hyper = nn.Sequential(
            nn.Linear(token_dim, token_dim // reduction),
            nn.ReLU(inplace=True),
            nn.Linear(token_dim // reduction, 2 * channels),
            nn.Hardsigmoid(),
        )

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        theta = self.hyper(first_token(tokens))
        if is_per_frame(tokens):  # (B, T, 2C) -> (B, 2C, T, 1, 1)
            theta = theta.transpose(1, 2).reshape(x.shape[0], 2 * self.channels, -1, 1, 1)
        else:
            theta = theta.view(x.shape[0], 2 * self.channels, *([1] * (x.ndim - 2)))
        slope_pos, slope_neg = theta.split(self.channels, dim=1)
        return torch.maximum(x * (2.0 * slope_pos), x * (2.0 * slope_neg - 1.0))


class StaticReLU(nn.Module):
    """A plain ReLU with DynamicReLU's call signature (the tokens are ignored); for ablations."""

    def forward(self, x: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        return torch.relu(x)
