"""Long sequences: overlapping windows of a model's max_len and how they are joined.

Past a model's ``max_len`` the samplers generate window by window (``window_starts``): each
new window holds its first frames to the previous result by inpainting at every DDIM step
(Diffusion.replace_known), then the overlap is crossfaded (or cut) into the output
(``blend_overlap``). ``sliding_windows`` runs that loop for any per-window sampler; with
``fixed`` latents (temporal editing: any frame mask, not only a window's first frames) every
window also knows the fixed frames that fall in it, and the output is set to them exactly.

Which windows hold fixed frames is decided on the host from one copy of the fixed masks made
before the first window (``held_frames``), so no window or step waits on the device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def window_starts(total: int, window: int, overlap: int) -> list[int]:
    """Start frames of the windows covering [0, total): hop = window - overlap; the last
    window is moved back to end exactly at `total`, so every window is full length (the
    lengths the model was trained on) and overlaps its predecessor by at least `overlap`."""
    if window < 1:
        raise ValueError(f"window must be positive, got {window}")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window={window}), got {overlap}")
    starts = [0]
    while starts[-1] + window < total:
        starts.append(min(starts[-1] + window - overlap, total - window))
    return starts


def window_seams(total: int, window: int, overlap: int | None = None) -> list[int]:
    """Frames where the overlaps of `window_starts` begin and end (the seams a sliding-window
    sample has); overlap None: window // 4, as sliding_windows uses."""
    overlap = window // 4 if overlap is None else overlap
    starts = window_starts(total, window, overlap)
    return sorted({b for s, prev in zip(starts[1:], starts[:-1]) for b in (s, min(prev + window, total))})


def blend_overlap(prev: torch.Tensor, new: torch.Tensor, blend: str) -> torch.Tensor:
    """Join the previous result and a new window over their n shared frames (last axis).

    crossfade: linear, the new window's weight rising (j + 1) / (n + 1) so both ends keep a
    little of the other and neither seam is a jump; cut: previous frames up to the middle of
    the overlap, the new window's after it.
    """
    n = prev.shape[-1]
    if blend == "crossfade":
        w = torch.arange(1, n + 1, device=prev.device, dtype=prev.dtype) / (n + 1)
        return (1 - w) * prev + w * new
    if blend == "cut":
        out = prev.clone()
        out[..., n // 2 :] = new[..., n // 2 :]
        return out
    raise ValueError(f"unknown blend {blend!r}; use 'crossfade' or 'cut'")


WindowFn = Callable[[int, int, int, list | None, list | None], list[torch.Tensor]]
WindowCallback = Callable[[int, int, int, list[torch.Tensor]], None]
Fixed = tuple[torch.Tensor, torch.Tensor]  # (latents [B, C, total], mask [B, total] bool)


def held_frames(mask: torch.Tensor) -> list[bool]:
    """Per frame, whether any batch item holds it: a host copy of a fixed mask [B, total]
    (one device-to-host transfer, made once before the windows; no-op on the CPU)."""
    return mask.any(dim=0).tolist()


def _window_known(
    outs: list[torch.Tensor],
    fixed: list[Fixed | None],
    held: list[list[bool] | None],
    s: int,
    e: int,
    n_known: int,
) -> tuple[list | None, list | None]:
    """Each output's known latents and mask over window [s, e): its first n_known frames (the
    output so far) and the fixed frames inside it (held: held_frames of each fixed mask).
    (None, None) when nothing is known."""
    known, masks = [], []
    for i, f in enumerate(fixed):
        m = v = None
        if n_known > 0:
            v = outs[i][..., s:e]
            m = (torch.arange(e - s, device=v.device) < n_known).expand(v.shape[0], -1)
        if f is not None and any(held[i][s:e]):
            fv, fm = f[0][..., s:e], f[1][:, s:e]
            v = fv if v is None else torch.where(fm[:, None], fv, v)
            m = fm if m is None else m | fm
        known.append(v)
        masks.append(m)
    if all(m is None for m in masks):
        return None, None
    return known, masks


def sliding_windows(
    total: int,
    window: int,
    overlap: int | None,
    blend: str,
    run_window: WindowFn,
    on_window: WindowCallback | None,
    fixed: list[Fixed | None] | None = None,
    held: list[list[bool] | None] | None = None,
) -> list[torch.Tensor]:
    """Generate [.., total] outputs (one per modality) window by window.

    run_window(k, start, end, known, known_mask) returns window k's latents. `known` holds one
    entry per output, the latents over the window's frames of which those marked True in its
    `known_mask` entry [B, end - start] are already decided: the first ones (the output so far,
    from the second window on) and any `fixed` frames inside the window. An entry is None
    where an output knows nothing in the window; both are None when no output does.
    fixed: one entry per output, None or (latents [B, C, total], mask [B, total] bool): frames
    held to those latents (in-painting); the returned outputs equal them exactly there.
    on_window(start, end, n_known, latents) sees each window's own result before blending.
    held: held_frames of each fixed mask, when the caller has it (None: computed here, once).
    """
    if total < 1:
        raise ValueError(f"length must be at least 1 frame, got {total}")
    if overlap is None:
        overlap = window // 4
    for f in fixed or []:
        if f is not None and (f[0].shape[-1] != total or f[1].shape[-1] != total or f[1].dtype != torch.bool):
            raise ValueError(f"fixed latents and masks must cover the {total} frames, the masks bool")
    if fixed is not None and held is None:
        held = [None if f is None else held_frames(f[1]) for f in fixed]
    outs: list[torch.Tensor] = []
    prev_end = 0
    for k, s in enumerate(window_starts(total, window, overlap)):
        e = min(s + window, total)
        n_known = prev_end - s if k else 0
        nothing = [None] * len(outs)
        known, km = _window_known(outs, fixed or nothing, held or nothing, s, e, n_known)
        res = run_window(k, s, e, known, km)
        if on_window is not None:
            on_window(s, e, n_known, res)
        if not outs:
            outs = [r.new_zeros(r.shape[:-1] + (total,)) for r in res]
        for o, r in zip(outs, res):
            if n_known > 0:
                o[..., s:prev_end] = blend_overlap(o[..., s:prev_end], r[..., :n_known], blend)
            o[..., s + n_known : e] = r[..., n_known:]
        prev_end = e
    for o, f in zip(outs, fixed or []):
        if f is not None:
            o.copy_(torch.where(f[1][:, None], f[0].to(o.dtype), o))
    return outs


def window_slice(m: torch.Tensor | None, s: int, e: int) -> torch.Tensor | None:
    """Frames [s, e) of a tensor's last axis (None stays None)."""
    return None if m is None else m[..., s:e]
