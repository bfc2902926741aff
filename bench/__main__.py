"""``python -m bench``: list the benchmarks and how to run each."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path


def main() -> None:
    print("chatbank benchmarks (each prints its own figures):\n")
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if info.name in ("__main__", "load", "traced"):
            continue
        doc = (importlib.import_module(f"bench.{info.name}").__doc__ or "").strip().splitlines()
        print(f"  python -m bench.{info.name:<22} {doc[0] if doc else ''}")


if __name__ == "__main__":
    main()
