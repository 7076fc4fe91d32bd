"""``hhjax export FIT.json --to neuron|neuroml DIR [--force]``: a fitted cell for NEURON or NeuroML."""

from __future__ import annotations

from ..export import to_neuroml, to_neuron
from ._common import CLIError


def cmd_export(args):
    try:
        if args.to == "neuron":
            out = to_neuron(args.fit, args.directory, force=args.force)
            mods = sorted(p.name for p in out.glob("*.mod"))
            print(f"wrote {out}: {', '.join(mods) or 'no .mod files (NEURON built-in hh)'}, "
                  f"hhjax_cell.py, README.md; next: cd {out} && nrnivmodl")
        else:
            path = to_neuroml(args.fit, args.directory, force=args.force)
            print(f"wrote {path} (valid NeuroML 2)")
    except ImportError as exc:  # the optional exporter's package is missing
        raise CLIError(f"--to {args.to}: needs {exc.name or 'an optional package'} "
                       f"(pip install 'hhjax[export]')") from None
    return 0


def add_command(sub) -> None:
    e = sub.add_parser("export", help="write a fit.json as NEURON (NMODL + builder) or NeuroML 2 files")
    e.add_argument("fit", help="fit.json written by hhjax fit (or a params file from hhjax.save_params)")
    e.add_argument("--to", required=True, choices=("neuron", "neuroml"), help="target simulator format")
    e.add_argument("directory", help="output folder (must be absent or empty unless --force)")
    e.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    e.set_defaults(func=cmd_export)
