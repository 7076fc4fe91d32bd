"""Atomic file writes: nothing is ever left half-written."""

from __future__ import annotations

import json
import os
import tempfile


def write_atomic(path, data: bytes) -> str:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_json_atomic(path, obj) -> str:
    """Write ``obj`` as indented JSON, atomically."""
    return write_atomic(path, (json.dumps(obj, indent=2, default=_jsonable) + "\n").encode())


def _jsonable(x):
    import numpy as np

    if isinstance(x, (np.generic,)):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
