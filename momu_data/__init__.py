"""MoMu's dataset builder: dance videos -> 14-keypoint poses, 16 kHz log-mels, rhythm
features -> clips -> WebDataset shards -> a torch loader."""
import os
from pathlib import Path

# librosa compiles its peak picker and mel code with numba on first use (~14 s); numba can
# cache the result only in a writable folder, which site-packages often is not. Set once here
# (every entry point imports momu_data before librosa) and respect a caller's own setting.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "momu" / "numba"))
