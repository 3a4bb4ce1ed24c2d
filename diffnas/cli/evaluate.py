"""`diffnas evaluate`: test accuracy, parameters and multiply-adds of a trained network."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..notices import say, shell
from .options import json_text, positive


def unfinished(r: dict) -> str:
    """What an evaluation of a training stopped before its end scores, and how to finish it."""
    from ..runfolder import run_command

    ckpt = Path(r["checkpoint"])
    run = ckpt.parent
    if ckpt.name != "checkpoint.pt" or run_command(run) != "train":   # copied out of its run folder
        return f"the training had not finished ({r['epoch']} of {r['epochs']} epochs) when this checkpoint was saved"
    pipeline = run.parent if run.name == "train" and run_command(run.parent) == "pipeline" else None
    go_on = shell("diffnas", "run", "--resume", pipeline) if pipeline else shell("diffnas", "train", "--resume", run)
    return f"the training has not finished ({epochs_done(r)}): these are its weights so far; finish it with `{go_on}`"


def epochs_done(r: dict) -> str:
    """"3 of 5 epochs", and "and 6 steps of epoch 4" when the checkpoint was saved inside an epoch."""
    done = f"{r['epoch']} of {r['epochs']} epochs"
    if r["step"]:
        done += f" and {r['step']} step{'s' if r['step'] != 1 else ''} of epoch {r['epoch'] + 1}"
    return done


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a trained network", description=__doc__)
    p.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN_DIR",
                   help="checkpoint.pt, the training run folder, or a `diffnas run` folder (its train/)")
    p.add_argument("--data-dir", dest="data_dir", help="folder with the dataset files (default: the run's)")
    p.add_argument("--image-size", dest="image_size", type=int, metavar="N",
                   help="imagefolder, tiny-imagenet: decode the test images as N x N (shorter side resized, "
                        "centre crop), for images of another size than the training's (default: as the run did)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--batch-size", dest="batch_size", type=positive, metavar="N",
                   help="test images per batch (default: the training's batch size); the scores do not depend "
                        "on it (eval mode), larger batches run faster while memory lasts")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluate import evaluate

    r = evaluate(args.checkpoint, args.data_dir, args.device, image_size=args.image_size,
                 batch_size=args.batch_size)
    if not r["finished"]:   # on stderr, so --json's output stays one object
        say(f"diffnas: note: {unfinished(r)}")
    if args.json:
        print(json_text(r))
        return 0
    print(f"{r['checkpoint']} ({epochs_done(r)}, {r['dataset']}, {r['setting']} setting)")
    print(f"test accuracy {100 * r['test_acc']:.2f}%  error {100 * r['test_error']:.2f}%  loss {r['test_loss']:.4f}"
          f"  ({r['test_images']} test images)")
    print(f"params {r['params_m']:.6f}M (+{r['aux_params'] / 1e6:.6f}M auxiliary head)  "
          f"multiply-adds {r['madds']:,} ({r['madds'] / 1e6:.1f}M)")
    return 0
