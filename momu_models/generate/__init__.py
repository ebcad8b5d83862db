"""Generation: `pipeline` (`MoMuPipeline`: joint, dance for a music, music for a dance),
`outputs` (the result and its files), `length` (user-written lengths), `postprocess` (bone
lengths, smoothing), `render` (mp4 and beat plots), `vocoders/` (mel -> waveform).

Nothing is imported here, so that `render` or `postprocess` load without the pipeline."""
