"""Train the bundled demo model: the course network on scenes drawn by `cam.synthetic`.

    python -m cam.train                      # the committed model (CPU, 2 threads, ~15 min)
    python -m cam.train --smoke --out /tmp/m.pth   # seconds: tiny set, one epoch, small images

What it does (every number below is a flag):

1. Draws ``--n`` training scenes at 256x256 once, into memory (seed ``--seed``, species balanced,
   pot matching the species with probability ``--pot-match``).
2. Trains `cam.network.PotPlantGAP` (exactly the course architecture) with Adam, lr ``--lr``
   (1e-3 like the course, cosine-decayed to a tenth), batch ``--batch``, cross-entropy, for
   ``--epochs`` epochs. Each step sees ``--crop`` x ``--crop`` crops cut from the 256 scenes at
   native scale, centred near the plant and pot (a fraction ``--background-crops`` anywhere, so
   background texture learns to vote for no class), randomly mirrored. The network is fully
   convolutional with a 7x7 receptive field followed by GAP, so a crop keeps the texture scale
   of the full scene and costs (crop / 256)^2 of it.
3. Saves a plain state dict (``torch.save(module.state_dict())``, ~100 KB) to ``--out``.
4. Unless ``--no-card``: evaluates at the full 256 on freshly drawn in-distribution and unbiased
   (pot at chance) scenes with `cam.evaluate.evaluate`, and writes ``model_card.json`` and
   ``MODEL_CARD.md`` next to ``--out``.

Training uses only the CPU, with ``torch.set_num_threads(--threads)``; seeds fix the data, the
initial weights, the crops and the dropout masks, so a rerun on the same machine gives the same file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cam.network import CLASS_NAMES, PotPlantGAP
from cam.synthetic import MARKED_SHARE, Dataset, make_dataset

ASSETS = Path(__file__).parent / "assets"
DEFAULT_OUT = ASSETS / "pot_plant_gap_synthetic.pth"
CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"


@dataclass(frozen=True)
class TrainConfig:
    n: int = 3000
    epochs: int = 36
    size: int = 256
    crop: int = 48
    batch: int = 8
    lr: float = 3e-3
    seed: int = 0
    pot_match: float = 0.8
    background_crops: float = 0.15
    marked_share: float = MARKED_SHARE
    threads: int = 1
    eval_n: int = 200
    eval_seed: int = 1


def init_weights(module: PotPlantGAP) -> None:
    """Kaiming (He) normal convolutions and zero biases: activations keep their scale through the
    three ReLU layers, which trains several times faster than PyTorch's default uniform init."""
    for layer in module.conv_layers:
        if isinstance(layer, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                torch.nn.init.zeros_(layer.bias)


def crop_origins(
    rng: np.random.Generator, boxes: np.ndarray, size: int, crop: int, background_share: float
) -> np.ndarray:
    """Top-left corners (N, 2) = (y, x) of one crop per scene.

    Args:
        boxes: (N, 4) int = (y0, x0, y1, x1) bounding boxes of plant and pot (y1, x1 exclusive).

    The crop centre is uniform inside the box (so the crop holds plant or pot), or, for a
    ``background_share`` of scenes, uniform over the whole image.
    """
    n = boxes.shape[0]
    cy = rng.uniform(boxes[:, 0], boxes[:, 2])
    cx = rng.uniform(boxes[:, 1], boxes[:, 3])
    anywhere = rng.random(n) < background_share
    cy = np.where(anywhere, rng.uniform(0, size, n), cy)
    cx = np.where(anywhere, rng.uniform(0, size, n), cx)
    y0 = np.clip(np.round(cy - crop / 2), 0, size - crop).astype(np.int64)
    x0 = np.clip(np.round(cx - crop / 2), 0, size - crop).astype(np.int64)
    return np.stack([y0, x0], axis=1)


def object_boxes(data: Dataset) -> np.ndarray:
    """(N, 4) = (y0, x0, y1, x1) bounding boxes of plant | pot."""
    obj = data.plant_masks | data.pot_masks  # (N, S, S)
    rows, cols = obj.any(axis=2), obj.any(axis=1)  # (N, S) each
    size = obj.shape[1]
    idx = np.arange(size)
    y0 = np.where(rows, idx, size).min(axis=1)
    y1 = np.where(rows, idx, -1).max(axis=1) + 1
    x0 = np.where(cols, idx, size).min(axis=1)
    x1 = np.where(cols, idx, -1).max(axis=1) + 1
    return np.stack([y0, x0, y1, x1], axis=1)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [0, 1], channels-last memory (faster convs on CPU)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last)


def train(config: TrainConfig, log: Any = print) -> tuple[PotPlantGAP, dict[str, Any]]:
    """Train and return (module in eval mode, training record for the model card)."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(np.random.SeedSequence((config.seed, 1)))
    t0 = time.perf_counter()
    data = make_dataset(
        config.n, config.seed, pot_match_prob=config.pot_match, size=config.size, marked_share=config.marked_share
    )
    t_data = time.perf_counter() - t0
    log(f"drew {config.n} scenes at {config.size}x{config.size} in {t_data:.1f} s")
    boxes = object_boxes(data)
    module = PotPlantGAP()
    init_weights(module)
    module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs lack it
    opt = torch.optim.Adam(module.parameters(), lr=config.lr)
    steps_per_epoch = math.ceil(config.n / config.batch)
    total = steps_per_epoch * config.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    )
    labels = torch.from_numpy(data.labels)
    crop = min(config.crop, config.size)
    history: list[dict[str, float]] = []
    module.train()
    t1 = time.perf_counter()
    for epoch in range(config.epochs):
        order = rng.permutation(config.n)
        origins = crop_origins(rng, boxes, config.size, crop, config.background_crops)
        flips = rng.random(config.n) < 0.5
        loss_sum, correct, seen = 0.0, 0, 0
        for start in range(0, config.n, config.batch):
            idx = order[start : start + config.batch]
            batch = np.stack(
                [
                    data.images[i, origins[i, 0] : origins[i, 0] + crop, origins[i, 1] : origins[i, 1] + crop]
                    for i in idx
                ]
            )  # (B, crop, crop, 3)
            batch[flips[idx]] = batch[flips[idx], :, ::-1]
            x = to_tensor(batch)
            y = labels[idx]
            logits = module(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # our own freshly built module, never the served one
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
        rec = {
            "epoch": epoch + 1,
            "loss": loss_sum / seen,
            "crop_accuracy": correct / seen,
            "seconds": time.perf_counter() - t1,
        }
        history.append(rec)
        log(
            f"epoch {epoch + 1}/{config.epochs}: loss {rec['loss']:.4f}, crop accuracy "
            f"{rec['crop_accuracy']:.3f}, {rec['seconds']:.0f} s"
        )
    module.eval()
    module = module.to(memory_format=torch.contiguous_format)
    record = {
        "config": asdict(config),
        "data_seconds": round(t_data, 1),
        "train_seconds": round(time.perf_counter() - t1, 1),
        "history": [{k: round(v, 4) if isinstance(v, float) else v for k, v in h.items()} for h in history],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": "cpu",
    }
    return module, record


def save_state_dict(module: PotPlantGAP, path: Path) -> str:
    """Save a plain, contiguous CPU state dict; return its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    torch.save(state, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_card(out: Path, record: dict[str, Any], evaluation: dict[str, Any] | None) -> tuple[Path, Path]:
    """Write model_card.json and MODEL_CARD.md next to the checkpoint ``out``."""
    from cam.report import card_markdown

    card = {
        "name": "pot_plant_gap_synthetic",
        "architecture": "cam.network.PotPlantGAP (the course's cnn_gap: 3 conv 3x3 + ReLU, GAP, dropout, linear)",
        "classes": list(CLASS_NAMES),
        "checkpoint": out.name,
        "checkpoint_sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "checkpoint_bytes": out.stat().st_size,
        "data": "cam.synthetic: procedurally drawn pot plants (not the course's photos)",
        "command": record.get("command", "python -m cam.train"),
        "training": record,
        "evaluation": evaluation,
    }
    json_path = out.parent / CARD_JSON
    md_path = out.parent / CARD_MD
    json_path.write_text(json.dumps(card, indent=2) + "\n")
    md_path.write_text(card_markdown(card))
    return json_path, md_path


def _parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m cam.train", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=d.n, help="training scenes (default %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--size", type=int, default=d.size, help="scene side in pixels")
    p.add_argument("--crop", type=int, default=d.crop, help="training crop side in pixels")
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed, help="data, weights, crops and dropout seed")
    p.add_argument("--pot-match", type=float, default=d.pot_match, help="P(pot style = species)")
    p.add_argument("--background-crops", type=float, default=d.background_crops)
    p.add_argument(
        "--marked-share",
        type=float,
        default=d.marked_share,
        help="share of leaves showing the species' marks (cam.synthetic.MARKED_SHARE)",
    )
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--eval-n", type=int, default=d.eval_n, help="scenes per evaluation split for the card")
    p.add_argument("--eval-seed", type=int, default=d.eval_seed)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="checkpoint path (card written beside it)")
    p.add_argument("--no-card", action="store_true", help="skip the evaluation and the model card")
    p.add_argument(
        "--card-only",
        action="store_true",
        help="re-evaluate the checkpoint at --out and rewrite the card (keeps its training record)",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="a tiny run for tests: 16 scenes of 64x64, one epoch, 32x32 crops, 8 eval scenes",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.smoke:
        args.n, args.epochs, args.size, args.crop, args.batch, args.eval_n = 16, 1, 64, 32, 8, 8
    for name in ("n", "epochs", "batch", "threads", "eval_n"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}", file=sys.stderr)
            return 2
    if args.size < 32 or args.crop < 8:
        print("error: --size must be at least 32 and --crop at least 8", file=sys.stderr)
        return 2
    config = TrainConfig(
        n=args.n,
        epochs=args.epochs,
        size=args.size,
        crop=args.crop,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        pot_match=args.pot_match,
        background_crops=args.background_crops,
        marked_share=args.marked_share,
        threads=args.threads,
        eval_n=args.eval_n,
        eval_seed=args.eval_seed,
    )
    out: Path = args.out
    if args.card_only:
        old = json.loads((out.parent / CARD_JSON).read_text())
        record = old["training"]
        # the training settings are the recorded ones; the evaluation settings come from this command
        config = TrainConfig(**{**record["config"], "eval_n": args.eval_n, "eval_seed": args.eval_seed})
        record["config"] = asdict(config)
    else:
        t0 = time.perf_counter()
        module, record = train(config, log=lambda m: print(m, flush=True))
        record["command"] = " ".join(["python -m cam.train", *(sys.argv[1:] if argv is None else argv)])
        sha = save_state_dict(module, out)
        record["wall_seconds_to_checkpoint"] = round(time.perf_counter() - t0, 1)
        print(f"wrote {out} ({out.stat().st_size} bytes, sha256 {sha[:12]})", flush=True)
    if args.no_card:
        return 0
    from cam.evaluate import evaluate
    from cam.loading import load_model

    t2 = time.perf_counter()
    # Evaluate the file as written, through the same loader as the app: the card then names its sha256.
    evaluation = evaluate(load_model(out), n=config.eval_n, seed=config.eval_seed)
    record["eval_seconds"] = round(time.perf_counter() - t2, 1)
    json_path, md_path = write_card(out, record, evaluation)
    print(
        f"in-distribution accuracy {evaluation['accuracy']['in_distribution']['overall']:.3f}, unbiased "
        f"{evaluation['accuracy']['unbiased']['overall']:.3f}; wrote {json_path} and {md_path}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
