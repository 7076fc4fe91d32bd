"""The ``hhjax`` command line: ``demo``, ``simulate``, ``fit``, ``evaluate``, ``fit-many``, ``export``.

One module per verb, each with ``add_command(subparsers)``; what they share is in
:mod:`hhjax.cli._common`. Every error is printed as one line on stderr with exit status 2.
"""

from __future__ import annotations

import os
import sys

from ..cache import enable_compilation_cache
from . import demo, evaluate, export, fit, fit_many, simulate
from ._common import CLIError, Parser, check_output_names, exit_on_ctrl_c

VERBS = (demo, simulate, fit, evaluate, fit_many, export)


def make_parser() -> Parser:
    """The ``hhjax`` argument parser with every verb."""
    p = Parser(prog="hhjax", description="Differentiable Hodgkin–Huxley simulation and fitting in JAX.")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        verb.add_command(sub)
    return p


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    if not os.environ.get("HHJAX_NO_CACHE"):
        enable_compilation_cache()
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if argv is None:  # as a program (tests call main(argv) in-process)
        exit_on_ctrl_c(args.verb)
    try:
        check_output_names(args)
        return args.func(args)
    except KeyboardInterrupt:
        # Outputs are staged and removed on the way out (cli._common.Outputs): nothing is left.
        print(f"hhjax {args.verb}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, TypeError, FileNotFoundError, OSError, MemoryError) as exc:
        message = " ".join(str(exc).split())
        print(f"hhjax {args.verb}: error: {message}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - never a traceback: one line, exit status 2
        message = " ".join(str(exc).split())
        print(f"hhjax {args.verb}: error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
