"""Training: `args` (the settings every trainer shares), `loop` (batch stream, shard checks,
gradient averaging), `optim` (the fused AdamW), `checkpoint`, `distributed`, `runlog`, and one
module per trainer: `vae` (with `vae_steps`), `diffusion`, `classifier`."""
