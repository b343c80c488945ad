"""Reading admin-supplied files with a size cap, so a huge upload fails fast and uses little memory."""

from __future__ import annotations

from pathlib import Path

from content.problems import ContentError, Problem

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_CSV_BYTES = 50 * 1024 * 1024


def read_limited(path: Path, *, limit: int = MAX_FILE_BYTES) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise ContentError([Problem(str(path), 1, 0, "no such file")]) from None
    except IsADirectoryError:
        raise ContentError([Problem(str(path), 1, 0, "is a directory, not a file")]) from None
    except PermissionError:
        raise ContentError([Problem(str(path), 1, 0, "permission denied")]) from None
    if len(data) > limit:
        raise ContentError([Problem(str(path), 1, 0, f"file is larger than {limit // (1024 * 1024)} MB")])
    return data
