"""The ``mrirecon-vdm`` command line: ``data``, ``train``, ``recon``, ``bench``, ``demo``.

Each subcommand lives in ``mrirecon_vdm/_cli/<name>.py`` with a ``register(subparsers)``
function that adds its parser and sets ``func``; modules import heavy dependencies only
inside ``func``, so ``--help`` is fast.
"""
import argparse
import importlib
import sys

SUBCOMMANDS = ("data", "train", "recon", "bench", "demo")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mrirecon-vdm",
        description="MR image super-resolution with a k-space-guided Variational Diffusion "
                    "Model (Jiang, Gao, Sun, ISMRM 2023).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"mrirecon_vdm._cli.{name}").register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, RuntimeError, KeyError, OSError) as e:
        print(f"mrirecon-vdm {args.command}: error: {_message(e, args.command)}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = "; rerun with --resume" if args.command in RESUMABLE else ""
        print(f"mrirecon-vdm {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


#: Subcommands that keep their finished work and go on with ``--resume``.
RESUMABLE = ("train", "recon", "bench")


def _message(error, command):
    """The error's text without a leading ``<command>:`` (the line names it already)."""
    msg = str(error)
    prefix = f"{command}: "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


if __name__ == "__main__":
    sys.exit(main())
