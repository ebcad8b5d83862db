"""`python -m benchmarks` (`make bench`): runs every benchmark and appends to RESULTS.md."""
import os
import sys

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "numba"))
os.environ.setdefault("GLOG_minloglevel", "2")


def main(argv=None):
    from . import extraction

    which = set(argv or sys.argv[1:]) or {"extraction"}
    if "extraction" in which:
        print(extraction.run())


if __name__ == "__main__":
    main()
