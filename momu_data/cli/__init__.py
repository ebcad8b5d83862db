"""The `momu-data` command (`data.py`) and what every momu command shares (`common.py`)."""
