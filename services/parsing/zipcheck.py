"""Decompression-bomb checks for zip containers (DOCX, XLSX), run before any XML is read.

A DOCX is a zip: a few kilobytes can declare gigabytes of XML. Each entry's declared size
and compression ratio are checked first, then every entry is actually decompressed in
bounded pieces, so an archive whose headers lie is caught as well.
"""

from __future__ import annotations

import io
import zipfile

from services.parsing.model import DocumentRejected, ParseLimits

MAX_ENTRIES = 10_000
#: Small parts (styles, settings) compress far better than text; the ratio applies above this size.
RATIO_FLOOR_BYTES = 1024 * 1024
_PIECE = 1024 * 1024


def check_zip(content: bytes, limits: ParseLimits, kind: str) -> None:
    """DocumentRejected unless the archive stays within the uncompressed-size and ratio limits."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise DocumentRejected(f"the {kind} archive has {len(entries)} entries, more than {MAX_ENTRIES}")
        _check_declared(entries, limits, kind)
        total = 0
        for entry in entries:
            total = _inflate(archive, entry, total, limits, kind)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        raise DocumentRejected(f"the {kind} file is a corrupt zip archive ({error})") from None


def _check_declared(entries: list[zipfile.ZipInfo], limits: ParseLimits, kind: str) -> None:
    declared = sum(entry.file_size for entry in entries)
    if declared > limits.max_uncompressed_bytes:
        raise DocumentRejected(
            f"the {kind} archive declares {declared} bytes uncompressed, more than the limit of "
            f"{limits.max_uncompressed_bytes} (max_uncompressed_bytes): a decompression bomb"
        )
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > RATIO_FLOOR_BYTES and ratio > limits.max_compression_ratio:
            raise DocumentRejected(
                f"the {kind} entry {entry.filename} expands {ratio:.0f}x, more than the limit of "
                f"{limits.max_compression_ratio:g}x (max_compression_ratio): a decompression bomb"
            )


def _inflate(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, total: int, limits: ParseLimits, kind: str) -> int:
    """Decompress ``entry`` in pieces, counting real bytes; the running total is returned."""
    with archive.open(entry) as stream:
        while piece := stream.read(_PIECE):
            total += len(piece)
            if total > limits.max_uncompressed_bytes:
                raise DocumentRejected(
                    f"the {kind} archive expands to more than {limits.max_uncompressed_bytes} bytes "
                    "(max_uncompressed_bytes): a decompression bomb"
                )
    return total
