"""Files a web output's config names (style sheet, logo, labels): read whole, bounded."""

from __future__ import annotations


def read_file(path: str, limit: int) -> bytes:
    """A file the config names, at most `limit` bytes; ValueError saying what is wrong."""
    try:
        with open(path, "rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit // 1024} KiB")
    return data
