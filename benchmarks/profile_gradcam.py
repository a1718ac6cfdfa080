"""Where P3's time goes: our Grad-CAM and torchcam's GradCAM, operator by operator (torch.profiler).

    python -m benchmarks.profile_gradcam [--threads 1] [--calls 30]

Prints, for each side, the CPU time per call of the operators that take at least 1% of it, and the
total. Both sides use one forward pass of the same network at conv3 on the same 256x256 input.
"""

from __future__ import annotations

import argparse
import copy
import warnings
from collections.abc import Callable, Sequence

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.fixtures import bench_model, photo_like
from cam import explain
from cam.images import load_image


def per_op(fn: Callable[[], object], calls: int) -> tuple[float, list[tuple[str, float]]]:
    """(CPU ms per call, [(operator, self CPU ms per call), ...] largest first, >= 1% of the total)."""
    for _ in range(5):
        fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1000 / calls
    ops = sorted(((e.key, e.self_cpu_time_total / 1000 / calls) for e in events), key=lambda kv: -kv[1])
    return total, [(k, v) for k, v in ops if v >= 0.01 * total]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--calls", type=int, default=30)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = bench_model()
    loaded = load_image(photo_like(256, 256, seed=2))
    x = loaded.tensor()
    with torch.no_grad():
        cls = int(model.module(x).argmax())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchcam.methods import GradCAM

        tc = copy.deepcopy(model.module)

        def theirs() -> object:
            with GradCAM(tc, target_layer="conv_layers.5") as ex:
                return ex(cls, tc(x))

        sides = {
            "ours: explain(methods=('gradcam',))": lambda: explain(model, loaded, target=cls, methods=("gradcam",)),
            "torchcam GradCAM": theirs,
        }
        for name, fn in sides.items():
            total, ops = per_op(fn, args.calls)
            print(f"{name}: {total:.1f} ms CPU per call ({args.threads} thread(s))")
            for op, ms in ops:
                print(f"    {ms:7.2f} ms  {op}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
