"""The diffusion process and the samplers, apart from the networks (models/dit.py).

process.py: the noise schedule, forward noising, the training loss and DDIM (`Diffusion`);
guidance.py: classifier-free guidance and the cross-guidance switch step; windows.py:
overlapping windows for sequences longer than a model's max_len; sampling.py: `sample`
(one direction) and `joint_sample` (cross-guidance).
"""

from momu_models.diffusion.guidance import cross_guidance_start, guided_eps
from momu_models.diffusion.process import Diffusion, latent_scale, make_betas
from momu_models.diffusion.sampling import JointSample, joint_sample, sample
from momu_models.diffusion.windows import blend_overlap, sliding_windows, window_seams, window_slice, window_starts

__all__ = [
    "Diffusion",
    "JointSample",
    "blend_overlap",
    "cross_guidance_start",
    "guided_eps",
    "joint_sample",
    "latent_scale",
    "make_betas",
    "sample",
    "sliding_windows",
    "window_seams",
    "window_slice",
    "window_starts",
]
