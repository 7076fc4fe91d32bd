"""The ``hhjax`` command line: ``demo``, ``simulate``, ``fit``, ``evaluate``.

One module per verb, each with ``add_command(subparsers)``; what they share is in
:mod:`hhjax.cli._common`. Every error is printed as one line on stderr with exit status 2.
"""

from __future__ import annotations

import os
import sys

from ..cache import enable_compilation_cache
from . import demo, evaluate, fit, simulate
from ._common import CLIError, Parser, check_output_names

VERBS = (demo, simulate, fit, evaluate)


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
    try:
        check_output_names(args)
        return args.func(args)
    except (CLIError, ValueError, TypeError, FileNotFoundError, OSError) as exc:
        message = " ".join(str(exc).split())
        print(f"hhjax {args.verb}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
