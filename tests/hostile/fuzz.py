"""A longer mutation fuzz of the image loader than the test suite runs.

    python -m tests.hostile.fuzz --cases 100000 --seed 1 [--max-pixels 0] [--time-limit 10] [--save DIR]

Mutates valid PNG, JPEG, GIF, WebP, BMP and TIFF seeds (`mutate`, `run_fuzz` in tests/hostile/corpus.py)
and loads each result with cam.images.load_image. Prints a summary; exits 1 if any case raised
something other than ImageError or ran past --time-limit seconds, writing those inputs to --save.
Single-threaded and in-process, so a crash in a decoder ends the run: rerun with the printed seed
and --verbose to find the case.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.hostile.corpus import CaseTimeout, run_fuzz


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20_000, help="number of mutated files (default 20000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per case before it counts as a hang")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=4_000_000,
        help="temporary pixel cap (default 4000000; 0 keeps cam.images.MAX_PIXELS)",
    )
    parser.add_argument("--save", type=Path, default=None, help="folder for inputs that failed")
    parser.add_argument("--verbose", action="store_true", help="print every case's label before loading it")
    args = parser.parse_args(argv)

    failures: list[tuple[str, bytes]] = []

    def on_case(i: int, label: str, data: bytes, exc: BaseException | None) -> None:
        if args.verbose:
            print(label, "->", type(exc).__name__ if exc else "loaded", flush=True)
        if exc is not None and not _is_image_error(exc):
            failures.append((label, data))
        if (i + 1) % 5000 == 0:
            print(f"... {i + 1} cases", file=sys.stderr, flush=True)

    stats = run_fuzz(
        args.cases, args.seed, time_limit=args.time_limit, max_pixels=args.max_pixels or None, on_case=on_case
    )
    print(f"seed {args.seed}: {stats.summary()}")
    for label, message in stats.unexpected[:50]:
        print(f"UNEXPECTED {label}: {message}")
    for label in stats.timeouts[:50]:
        print(f"TIMEOUT {label}")
    if args.save is not None and failures:
        args.save.mkdir(parents=True, exist_ok=True)
        for k, (label, data) in enumerate(failures):
            (args.save / f"case{k:04d}.bin").write_bytes(data)
            print(f"saved {args.save / f'case{k:04d}.bin'}: {label}")
    return 1 if stats.unexpected or stats.timeouts else 0


def _is_image_error(exc: BaseException) -> bool:
    from cam.errors import ImageError

    return isinstance(exc, ImageError) and not isinstance(exc, CaseTimeout)


if __name__ == "__main__":
    raise SystemExit(main())
