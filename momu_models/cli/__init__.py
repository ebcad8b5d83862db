"""The commands `momu-train` (`train.py`), `momu-generate` (`generate.py`) and `momu-eval`
(`eval.py`): each parses its options and calls one library function."""
