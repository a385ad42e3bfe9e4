"""Training windows on large canvases, and the mirrored/rotated copies training caches.

A window is cut from the cached frozen features (stride 8) and its cell targets (stride 16) at the same
place, so a large canvas is cached once and trained on at the cost of a small one. A positive's window is
placed so that it holds one of its scratch cells (anywhere inside the window): its image label stays true.
A negative's window is anywhere: every cell of it is a negative.
"""

from __future__ import annotations

import numpy as np
import torch

from inspection.vision.model import CELL

FEATURE_STRIDE = 8  # the frozen part's output: stride 8 of the canvas


def oriented(canvas: np.ndarray, cells: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Copy k of a canvas and its cell targets: 0 as is, 1 mirrored left-right, 2 upside down, 3 turned
    180 degrees. Canvas sides are whole cells, so the cell grid maps onto itself."""
    flip_y, flip_x = k in (2, 3), k in (1, 3)
    sy = slice(None, None, -1) if flip_y else slice(None)
    sx = slice(None, None, -1) if flip_x else slice(None)
    return np.ascontiguousarray(canvas[sy, sx]), np.ascontiguousarray(cells[sy, sx])


def window_offsets(
    cells: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor, tile_cells: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """(row, col) cell offsets of one window per index in `idx`."""
    _, gh, gw = cells.shape
    th, tw = min(tile_cells, gh), min(tile_cells, gw)
    out = []
    for i in idx.tolist():
        positives = torch.nonzero(cells[i] > 0.5) if labels[i] > 0.5 else torch.empty(0, 2)
        if len(positives):
            py, px = positives[int(rng.integers(len(positives)))].tolist()
            oy = int(np.clip(py - rng.integers(th), 0, gh - th))
            ox = int(np.clip(px - rng.integers(tw), 0, gw - tw))
        else:
            oy, ox = int(rng.integers(gh - th + 1)), int(rng.integers(gw - tw + 1))
        out.append((oy, ox))
    return out


def cut_windows(
    feats: torch.Tensor, cells: torch.Tensor, idx: torch.Tensor, offsets: list[tuple[int, int]], tile_cells: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The windows' features (B x C x 2t x 2t) and cell targets (B x t x t)."""
    _, gh, gw = cells.shape
    th, tw = min(tile_cells, gh), min(tile_cells, gw)
    r = CELL // FEATURE_STRIDE  # feature pixels per cell
    pairs = list(zip(idx.tolist(), offsets, strict=True))
    f = [feats[i, :, oy * r : (oy + th) * r, ox * r : (ox + tw) * r] for i, (oy, ox) in pairs]
    c = [cells[i, oy : oy + th, ox : ox + tw] for i, (oy, ox) in pairs]
    return torch.stack(f), torch.stack(c)
