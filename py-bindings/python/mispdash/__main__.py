"""``python -m mispdash ...`` and the ``mispdash`` console script: the same command line as
the Rust binary (``run``, ``subscribe``, ``selftest``, ``clean``, ``rebuild-geo``, ...)."""

import sys

from ._mispdash import main as _main


def main() -> None:
    sys.exit(_main(["mispdash", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
