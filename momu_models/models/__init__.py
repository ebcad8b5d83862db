"""The networks, one per file, each a config dataclass with presets and save_pretrained /
from_pretrained: `vae` (BiCoR-VAE), `discriminator` (its stage-1 mel discriminator), `contrastive`
(the rhythmic contrastive loss), `dit` (the latent diffusion transformer), `motion_encoder` (the
motion classifier behind the motion metrics). `pretrained` is the folder format they share."""
