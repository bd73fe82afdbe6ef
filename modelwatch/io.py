"""Read and write data files: every failure to read becomes a SchemaError naming the file."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from modelwatch.errors import SchemaError


def read_csv_file(path: Path) -> pd.DataFrame:
    """Returns the rows of a CSV file with a header line, dtypes as pandas infers them.

    Raises:
        SchemaError: the file is missing, empty, has a header but no rows, or is not parsable CSV.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found") from None
    if path.is_dir():
        raise SchemaError(f"{path}: is a directory, expected a CSV file")
    if size == 0:
        raise SchemaError(f"{path}: file is empty (0 bytes), no rows")
    try:
        frame = pd.read_csv(path, low_memory=False)
    except pd.errors.EmptyDataError:
        raise SchemaError(f"{path}: no header and no rows (only blank lines)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())
        raise SchemaError(f"{path}: not a readable CSV file: {reason}") from exc
    if len(frame) == 0:
        header = ", ".join(map(str, frame.columns))
        raise SchemaError(f"{path}: no rows (only a header: {header})")
    return frame


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Writes the frame without its index, atomically (a reader never sees half a file)."""
    path = Path(path)
    with atomic_target(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def write_text(text: str, path: Path) -> Path:
    """Writes a UTF-8 text file atomically."""
    path = Path(path)
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside `path`; moves it onto `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def file_md5(path: Path) -> str:
    """Returns the hex MD5 of the file's bytes (the digest DVC uses).

    Raises:
        SchemaError: the file does not exist.
    """
    digest = hashlib.md5()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found") from None
    return digest.hexdigest()


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def safe_stem(name: str, content_md5: str) -> str:
    """Returns a file name's stem made safe as an id and as one path component: separators,
    control and shell-hostile characters become "_", leading dots and spaces go (so "...csv"
    cannot name the folder above), at most 100 characters; a stem with nothing left is
    "batch-<md5 prefix>". Letters of any script stay."""
    stem = Path(name).stem if name.lower().endswith(".csv") else Path(name).name
    cleaned = _UNSAFE.sub("_", stem).lstrip(". ").rstrip(" ")[:100]
    return cleaned if cleaned.strip("._-") else f"batch-{content_md5[:8]}"
