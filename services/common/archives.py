"""Zip archives from users, expanded in memory with the known attacks refused.

The gateway (a zip upload) and the indexer (a zip dropped into a knowledge-base bucket) both
expand zips, and both must refuse the same archives with the same `code`, so this lives here.

Two lines of defence. Before anything is inflated, the central directory is checked: paths,
member count, encryption, compression method, declared sizes and ratios, and that no two
members share compressed bytes (the overlapping-member zip bomb). Then, while each member is
inflated in bounded chunks, the bytes actually produced are counted against the same limits,
so a header that lies cannot buy more than the limits allow.
"""

from __future__ import annotations

import io
import posixpath
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from services.common.errors import InvalidInput

MiB = 1024 * 1024

# Inflate this much at a time: zipfile bounds deflate output by the size asked for, so no
# single read can allocate more than this however well the member compresses.
_CHUNK_BYTES = 1 * MiB
_ENCRYPTED_FLAG = 0x1
# A local file header is at least this long; members closer together than this share bytes.
_LOCAL_HEADER_BYTES = 30
# bzip2 and LZMA are refused: zipfile inflates them without an output bound, so a few KiB of
# bzip2 can become gigabytes in one call before any count of ours runs.
_SAFE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_DRIVE = re.compile(r"^[A-Za-z]:")
# zipfile builds an object for every central-directory entry the moment it opens an archive,
# so a small upload of millions of empty entries costs gigabytes. The directory's size is read
# from the end record first and refused past this many bytes per allowed file: room for
# folders, __MACOSX twins and long names several times over.
_DIRECTORY_BYTES_PER_FILE = 4 * 1024
_END_RECORD = struct.Struct("<4s4H2LH")
_END_RECORD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR_SIZE = 20
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_END_RECORD_SIGNATURE = b"PK\x06\x06"


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int = 1_000
    max_member_bytes: int = 100 * MiB
    max_total_bytes: int = 500 * MiB
    max_ratio: float = 200.0
    # Small files can compress absurdly well (a log of one repeated line); a member is judged
    # by its ratio only once it inflates past this size.
    ratio_floor_bytes: int = 1 * MiB
    # A .zip inside the archive is expanded too; a .zip inside that one is refused.
    max_depth: int = 1


class ArchiveMember(NamedTuple):
    name: str
    data: bytes


@dataclass
class _Budget:
    """What is left for the whole upload, shared by an archive and the zips inside it."""

    files: int
    bytes: int


def iter_zip_members(
    data: bytes | BinaryIO, *, limits: ArchiveLimits = ArchiveLimits()
) -> Iterator[ArchiveMember]:
    """Yield `(name, data)` for each regular file in a zip (bytes or a seekable binary file).

    Names are relative POSIX paths; members of a nested zip come out as `inner.zip/name`.
    Directories, symlinks, `__MACOSX/` and dotfiles are skipped. Any refusal raises
    `InvalidInput` with an `archive_*` code. A refusal can come after some members were
    yielded (a nested zip, or a member that inflates past its header), so a caller that
    stores members should gather them all before committing any.
    """
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    budget = _Budget(files=limits.max_files, bytes=limits.max_total_bytes)
    yield from _iter_archive(source, limits=limits, budget=budget, prefix="", depth=0)


def check_zip_directory(archive: zipfile.ZipFile, *, limits: ArchiveLimits) -> None:
    """Refuse, from the central directory alone, what would be unsafe to inflate.

    That is: sizes or ratios over the limits, members that share compressed bytes, and
    compression methods without an output bound. zipfile never inflates a member past the size
    its directory entry declares, so after this check reading any member of `archive` costs at
    most the limits. Also used on formats that are zips inside (a .docx) before a library
    opens them.
    """
    entries = archive.infolist()
    declared_total = 0
    for info in entries:
        declared_total += info.file_size
        if info.compress_type not in _SAFE_METHODS:
            raise InvalidInput(
                "archive_unsupported",
                f"'{info.filename}' uses a compression method that is not supported; "
                "re-create the archive with standard (deflate) compression.",
            )
        if info.file_size > limits.max_member_bytes:
            raise _too_large(info.filename, limits.max_member_bytes)
        if info.file_size > limits.ratio_floor_bytes and (
            info.file_size > limits.max_ratio * max(info.compress_size, 1)
        ):
            raise _bomb(info.filename)
    if declared_total > limits.max_total_bytes:
        raise InvalidInput(
            "archive_too_large",
            f"The archive unpacks to more than {_mib(limits.max_total_bytes)} in all.",
        )
    # Each member's compressed bytes must end before the next member's header starts; the
    # overlapping-member bomb points many directory entries at the same compressed data.
    by_offset = sorted(entries, key=lambda info: info.header_offset)
    end_of_data = getattr(archive, "start_dir", None)
    for current, following in zip(by_offset, [*by_offset[1:], None], strict=True):
        next_start = following.header_offset if following is not None else end_of_data
        if next_start is None:
            continue
        if current.header_offset + _LOCAL_HEADER_BYTES + current.compress_size > next_start:
            raise InvalidInput(
                "archive_bomb",
                "The archive's members overlap each other, a trick used by zip bombs; "
                "it was not unpacked.",
            )


def _iter_archive(
    source: BinaryIO, *, limits: ArchiveLimits, budget: _Budget, prefix: str, depth: int
) -> Iterator[ArchiveMember]:
    try:
        directory_size = _directory_size(source)
        if directory_size is not None and directory_size > (
            _DIRECTORY_BYTES_PER_FILE * limits.max_files
        ):
            raise _too_many_files(limits)
        with zipfile.ZipFile(source) as archive:
            check_zip_directory(archive, limits=limits)
            members = _plan(archive, prefix=prefix)
            budget.files -= len(members)
            if budget.files < 0:
                raise _too_many_files(limits)
            for name, info in members:
                if _is_zip(name):
                    if depth >= limits.max_depth:
                        raise InvalidInput(
                            "archive_nested",
                            f"'{name}' is nested too deeply: archives inside archives are "
                            f"unpacked only {limits.max_depth} level deep.",
                        )
                    inner = _inflate(archive, info, name, limits=limits, allowed=None)
                    yield from _iter_archive(
                        io.BytesIO(inner),
                        limits=limits,
                        budget=budget,
                        prefix=f"{name}/",
                        depth=depth + 1,
                    )
                    continue
                content = _inflate(archive, info, name, limits=limits, allowed=budget.bytes)
                budget.bytes -= len(content)
                yield ArchiveMember(name, content)
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        struct.error,
        ValueError,
        NotImplementedError,
    ) as exc:
        # ValueError: undecodable UTF-8 names, bad seeks on a mangled directory.
        # NotImplementedError: a "version needed to extract" that no archiver writes.
        where = f"'{prefix.rstrip('/')}' " if prefix else "The archive "
        raise InvalidInput(
            "archive_corrupt", f"{where}is damaged or not a zip file and could not be unpacked."
        ) from exc


def _directory_size(source: BinaryIO) -> int | None:
    """Bytes of the central directory as the end record states them; None if none is found."""
    size = source.seek(0, io.SEEK_END)
    source.seek(max(0, size - _END_RECORD.size - 0xFFFF))
    tail = source.read()
    # The last signature with a whole record after it, as zipfile itself searches.
    at = tail.rfind(_END_RECORD_SIGNATURE, 0, len(tail) - _END_RECORD.size + 4)
    if at < 0:
        return None
    directory_size: int = _END_RECORD.unpack_from(tail, at)[5]
    zip64_at = at - _ZIP64_LOCATOR_SIZE - _ZIP64_END_RECORD.size
    if directory_size == 0xFFFFFFFF and zip64_at >= 0:
        record = _ZIP64_END_RECORD.unpack_from(tail, zip64_at)
        if record[0] == _ZIP64_END_RECORD_SIGNATURE:
            directory_size = record[8]
    return directory_size


def _plan(archive: zipfile.ZipFile, *, prefix: str) -> list[tuple[str, zipfile.ZipInfo]]:
    """The members to yield, in archive order, after every entry's path has been checked."""
    members: list[tuple[str, zipfile.ZipInfo]] = []
    for info in archive.infolist():
        parts = _safe_parts(info.filename)
        if info.is_dir() or not parts or not _is_regular(info):
            continue
        if parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts):
            continue
        name = prefix + "/".join(parts)
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise InvalidInput(
                "archive_encrypted",
                f"'{name}' is password-protected; upload an archive without a password.",
            )
        members.append((name, info))
    return members


def _safe_parts(filename: str) -> list[str]:
    """Path components of an entry name; refuses any name that could leave the folder."""
    path = filename.replace("\\", "/")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if path.startswith("/") or _DRIVE.match(path) or ".." in parts:
        raise InvalidInput(
            "archive_unsafe_path",
            f"The archive contains an unsafe path ('{filename}'); it was not unpacked.",
        )
    return parts


def _is_regular(info: zipfile.ZipInfo) -> bool:
    # Unix archivers keep the file type in the high 16 bits; no type bits means "not recorded"
    # (zipfile's own writestr leaves them out).
    kind = stat.S_IFMT(info.external_attr >> 16)
    return info.create_system != 3 or kind in (0, stat.S_IFREG)


def _is_zip(name: str) -> bool:
    # By extension only: a .docx or .xlsx is a zip too, and must reach the extractor whole.
    return posixpath.splitext(name)[1].lower() == ".zip"


def _inflate(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    name: str,
    *,
    limits: ArchiveLimits,
    allowed: int | None,
) -> bytes:
    """A member's bytes, counted as they are produced rather than trusted from its header."""
    member_cap = limits.max_member_bytes
    ratio_cap = max(limits.ratio_floor_bytes, int(limits.max_ratio * max(info.compress_size, 1)))
    out = bytearray()
    with archive.open(info) as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            out += chunk
            if len(out) > member_cap:
                raise _too_large(name, member_cap)
            if allowed is not None and len(out) > allowed:
                raise InvalidInput(
                    "archive_too_large",
                    f"The archive unpacks to more than {_mib(limits.max_total_bytes)} in all.",
                )
            if len(out) > ratio_cap:
                raise _bomb(name)
    return bytes(out)


def _too_many_files(limits: ArchiveLimits) -> InvalidInput:
    return InvalidInput(
        "archive_too_many_files",
        f"The archive holds more than {limits.max_files:,} files; split it into smaller archives.",
    )


def _too_large(name: str, limit: int) -> InvalidInput:
    return InvalidInput(
        "archive_too_large", f"'{name}' in the archive unpacks to more than {_mib(limit)}."
    )


def _bomb(name: str) -> InvalidInput:
    return InvalidInput(
        "archive_bomb",
        f"'{name}' in the archive is compressed suspiciously well, as zip bombs are; "
        "it was not unpacked.",
    )


def _mib(size: int) -> str:
    return f"{size / MiB:,.0f} MiB"
