"""Where the example recordings are: the repository's copy first, then ``../shared``.

The repository ships the real recordings its tests and notebooks use in
``data/recordings/`` (licences in ``data/recordings/SOURCES.md``), some compressed
(``18711001.abf.xz``; :func:`~hhjax.io.load_recording` opens ``.xz``/``.gz``
directly). A checkout with the shared data folder beside it
(``../shared/data/recordings``) can use that too. An installed wheel has neither:
the data are not package data.
"""

from __future__ import annotations

from pathlib import Path

from .recording import fail

_REPO_DIR = Path(__file__).resolve().parents[2] / "data" / "recordings"
_SHARED_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "recordings"
_COMPRESSED = (".xz", ".gz")


def default_recordings_dir() -> Path:
    """The shared recordings folder, ``../shared/data/recordings`` beside the repo root.

    It may not exist (check ``.is_dir()``); it is not part of the repo. For the
    recordings the repo ships, use :func:`example_recording`.

    Example:
        >>> sorted(p.name for p in default_recordings_dir().glob("*.abf"))  # doctest: +SKIP
        ['171116sh_0018.abf', '18711001.abf', 'File_axon_5.abf']
    """
    return _SHARED_DIR


def example_recordings_dirs() -> tuple[Path, ...]:
    """The folders :func:`example_recording` searches, in order (the repo copy first).

    Example:
        >>> [p.parts[-2:] for p in example_recordings_dirs()][0]
        ('data', 'recordings')
    """
    return (_REPO_DIR, _SHARED_DIR)


def example_recording(name: str) -> Path:
    """Path of the example recording ``name`` (a file such as ``'18711001.abf'``, or ``'B6'``).

    Looks in the repository's ``data/recordings/`` (also for ``name + '.xz'`` or
    ``'.gz'``), then in ``../shared/data/recordings/``. The result can be passed
    straight to :func:`~hhjax.io.load_recording`.

    Raises:
        FileNotFoundError: one line naming ``name`` and both folders, when it is in neither.

    Example:
        >>> example_recording("18711001.abf").name in ("18711001.abf", "18711001.abf.xz")
        True
    """
    for folder in example_recordings_dirs():
        for candidate in [folder / name] + [folder / (name + z) for z in _COMPRESSED]:
            if candidate.exists():
                return candidate
    raise fail(name, f"example recording not found in {_REPO_DIR} (the repository's copy) "
                     f"nor in {_SHARED_DIR}", FileNotFoundError)
