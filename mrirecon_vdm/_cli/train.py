"""``mrirecon-vdm train``: train the VDM prior from a JSON configuration."""
import argparse

DESCRIPTION = """\
Train the variational diffusion model (VDM) prior on magnitude slices.

The JSON config holds a TrainConfig (see mrirecon_vdm/prior/configs/brain128.json for
the shipped prior, tiny.json for a smoke test); options given here override it. Data: an
HDF5 file with datasets train/images and val/images of shape (n, H, W), or a .npy/.npz
array. Everything is written to --out: checkpoint.pt (atomic), metrics.csv, val.csv,
samples_<step>.png, config.json.

The run stops after --steps steps, or after the current step on SIGTERM/Ctrl-C
(checkpoint first). --resume continues from OUT/checkpoint.pt if it exists and starts
afresh if not, so the same command line can be re-issued after every kill:

  nohup mrirecon-vdm train --config mrirecon_vdm/prior/configs/brain128.json \\
      --data brain.h5 --out results/prior --resume > results/prior.log 2>&1 &

Several processes (DistributedDataParallel; gloo on CPU, nccl on CUDA):

  torchrun --nproc_per_node=2 -m mrirecon_vdm.cli train --config CFG --out DIR --resume
"""


def register(subparsers):
    p = subparsers.add_parser(
        "train", help="train the VDM prior (checkpoints, logs, resume)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, metavar="FILE",
                   help="JSON training configuration (TrainConfig)")
    p.add_argument("--out", metavar="DIR", help="output folder (overrides out_dir)")
    p.add_argument("--data", metavar="FILE",
                   help="training data: .h5 (train/images, val/images), .npz or .npy "
                        "(overrides data)")
    p.add_argument("--val-data", metavar="FILE", help="separate validation data file")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt if present (start afresh if not)")
    p.add_argument("--init", metavar="PRIOR",
                   help="fine-tune: start from an exported prior (folder or prior.safetensors, "
                        "e.g. mrirecon_vdm/prior/weights) instead of random weights")
    p.add_argument("--steps", type=int, metavar="N", help="total number of optimiser steps")
    p.add_argument("--batch-size", type=int, metavar="B", help="images per step per process")
    p.add_argument("--patch-size", type=int, metavar="P", help="side of the training patches")
    p.add_argument("--lr", type=float, help="AdamW learning rate")
    p.add_argument("--lr-decay-steps", type=int, metavar="N",
                   help="anneal the lr with a cosine over the last N steps (0 = constant)")
    p.add_argument("--seed", type=int, help="initialisation and data seed")
    p.add_argument("--save-every", type=int, metavar="N", help="checkpoint every N steps")
    p.add_argument("--val-every", type=int, metavar="N",
                   help="validation bound every N steps (0 = never)")
    p.add_argument("--sample-every", type=int, metavar="N",
                   help="PNG grid of samples every N steps (0 = never)")
    p.add_argument("--threads", type=int, metavar="N", help="torch CPU threads")
    bf = p.add_mutually_exclusive_group()
    bf.add_argument("--bf16", dest="bf16", action="store_true", default=None,
                    help="bfloat16 autocast for the network")
    bf.add_argument("--no-bf16", dest="bf16", action="store_false", help="float32 throughout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args):
    from mrirecon_vdm.prior.training import TrainConfig, train

    config = TrainConfig.load(args.config)
    changes = {"out_dir": args.out, "data": args.data, "val_data": args.val_data,
               "steps": args.steps, "batch_size": args.batch_size,
               "patch_size": args.patch_size, "lr": args.lr,
               "lr_decay_steps": args.lr_decay_steps, "seed": args.seed,
               "save_every": args.save_every, "val_every": args.val_every,
               "sample_every": args.sample_every, "num_threads": args.threads,
               "bf16": args.bf16, "init": args.init}
    changes = {k: v for k, v in changes.items() if v is not None}
    if args.no_progress:
        changes["progress"] = False
    config = config.replace(**changes)
    if config.steps < 1:
        where = "--steps" if args.steps is not None else f"steps in --config {args.config}"
        raise ValueError(f"{where}: expected an integer >= 1 (the optimiser steps of the run), "
                         f"got {config.steps}")
    result = train(config, resume=args.resume)
    if result.checkpoint:
        state = "interrupted" if result.interrupted else "done"
        val = "" if result.val_bpd is None else f", validation bound {result.val_bpd:.4f} bits/dim"
        print(f"{state} at step {result.step}{val}; checkpoint {result.checkpoint}")
    return 0


def main(argv=None):
    """Stand-alone entry: ``python -m mrirecon_vdm._cli.train --config FILE ...``."""
    import sys
    parser = argparse.ArgumentParser(prog="mrirecon-vdm")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train"] + list(sys.argv[1:] if argv is None else argv))
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError, KeyError, OSError) as e:
        print(f"mrirecon-vdm train: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
