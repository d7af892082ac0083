"""``python -m hyperpy``: see ``hyperpy._cli``."""

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
