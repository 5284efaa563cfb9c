"""Chebyshev graph convolution and IntagHand's graph residual block.

``ChebConv`` with order K concatenates [x, L~x, T2(L~)x, ...] on the feature axis and applies one
Linear; L~ = 2 L / lambda_max - I is a dense (V, V) buffer multiplied with matmul. K = 1 is a
per-vertex linear layer (no neighbourhood). ``GraphResBlock``: ChebConv -> LN -> ReLU -> ChebConv
-> dropout, plus a Linear shortcut, then LN of the sum; as in IntagHand's released code the first
convolution sees the raw input.
"""
from __future__ import annotations

import torch
from torch import nn


def chebyshev_features(lap: torch.Tensor, x: torch.Tensor, order: int) -> torch.Tensor:
    """[T_0(L) x, ..., T_{order-1}(L) x] concatenated on the channel axis (x itself when order is 1);
    ``lap`` broadcasts against x's leading axes (the deployment graph stacks both hands on one)."""
    terms = [x]
    if order > 1:
        terms.append(torch.matmul(lap, x))
    for _ in range(2, order):
        terms.append(2 * torch.matmul(lap, terms[-1]) - terms[-2])
    return torch.cat(terms, -1) if len(terms) > 1 else x


class ChebConv(nn.Module):
    def __init__(self, cin: int, cout: int, laplacian: torch.Tensor, order: int = 2) -> None:
        super().__init__()
        self.order = order
        self.register_buffer("lap", laplacian, persistent=False)
        self.fc = nn.Linear(cin * order, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, V, C) -> (B, V, cout)."""
        return self.fc(chebyshev_features(self.lap, x, self.order))


class GraphResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, laplacian: torch.Tensor, order: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv1 = ChebConv(cin, cout, laplacian, order)
        self.norm1 = nn.LayerNorm(cout)
        self.conv2 = ChebConv(cout, cout, laplacian, order)
        self.drop = nn.Dropout(dropout)
        self.shortcut = nn.Linear(cin, cout)
        self.norm2 = nn.LayerNorm(cout)

    def forward(self, x):
        y = self.drop(self.conv2(torch.relu(self.norm1(self.conv1(x)))))
        return self.norm2(y + self.shortcut(x))


class GraphLayer(nn.Module):
    """``blocks`` residual blocks (cin -> cout, then cout -> cout), ReLU between blocks."""

    def __init__(self, cin: int, cout: int, laplacian: torch.Tensor, blocks: int = 4, order: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [GraphResBlock(cin if i == 0 else cout, cout, laplacian, order, dropout) for i in range(blocks)])

    def forward(self, x):
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i < len(self.blocks) - 1:
                x = torch.relu(x)
        return x


def rescaled_laplacian(laplacian, lmax: float) -> torch.Tensor:
    """L~ = 2 L / lambda_max - I, the Chebyshev domain [-1, 1]."""
    lap = torch.as_tensor(laplacian, dtype=torch.float32)
    return 2.0 * lap / lmax - torch.eye(lap.shape[0])
