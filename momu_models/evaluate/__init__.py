"""Evaluation: `metrics/` (pure functions on arrays: beats, FAD, Frechet, motion, diversity,
sync), `files` (finding, pairing and loading generated and reference files), `alignment`
(beat scores of paired files), `suite` (every figure of a run folder), `ceiling` (real data's
own beat alignment), `report` and `plots` (tables and figures)."""
