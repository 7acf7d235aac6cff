import io
import os
import random
import stat
import struct
import time
import zipfile
from collections.abc import Iterable

import pytest

from services.common.archives import ArchiveLimits, ArchiveMember, iter_zip_members
from services.common.errors import InvalidInput

MiB = 1024 * 1024
LIMITS = ArchiveLimits()
CENTRAL_ENTRY = b"PK\x01\x02"
END_RECORD = b"PK\x05\x06"


def make_zip(
    members: Iterable[tuple[str | zipfile.ZipInfo, bytes]],
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def expand(data: bytes, limits: ArchiveLimits = LIMITS) -> list[ArchiveMember]:
    return list(iter_zip_members(data, limits=limits))


def refusal(data: bytes, limits: ArchiveLimits = LIMITS) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        expand(data, limits)
    assert caught.value.http_status == 422
    assert caught.value.message.endswith(".")
    return caught.value


@pytest.fixture(scope="module")
def zeros_bomb() -> bytes:
    """200 MB of zeros in about 200 KB, written in chunks so the test never holds 200 MB."""
    buffer = io.BytesIO()
    chunk = bytes(MiB)
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.txt", "w") as member,
    ):
        for _ in range(200):
            member.write(chunk)
    return buffer.getvalue()


def test_regular_files_come_out_with_their_paths_and_junk_is_skipped() -> None:
    symlink = zipfile.ZipInfo("docs/link.txt")
    symlink.create_system = 3
    symlink.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = make_zip(
        [
            ("docs/", b""),
            ("docs/report.txt", b"quarterly numbers"),
            ("docs\\windows.md", b"# written on Windows"),
            ("./notes.txt", b"notes"),
            ("__MACOSX/docs/._report.txt", b"\x00\x05\x16\x07resource fork"),
            ("docs/.DS_Store", b"\x00\x00\x00\x01Bud1"),
            (".git/config", b"[core]"),
            (symlink, b"../../etc/passwd"),
            ("empty.txt", b""),
        ]
    )
    members = expand(data)
    assert members == [
        ("docs/report.txt", b"quarterly numbers"),
        ("docs/windows.md", b"# written on Windows"),
        ("notes.txt", b"notes"),
        ("empty.txt", b""),
    ]
    # A seekable file works as well as bytes, and members unpack as (name, data).
    name, content = next(iter_zip_members(io.BytesIO(data), limits=LIMITS))
    assert (name, content) == ("docs/report.txt", b"quarterly numbers")


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "/etc/passwd", "docs/../../escape.txt", "..\\..\\boot.ini", "C:/x.txt"],
)
def test_paths_that_leave_the_folder_are_refused(name: str) -> None:
    error = refusal(make_zip([("fine.txt", b"ok"), (name, b"root:x:0:0")]))
    assert error.code == "archive_unsafe_path"
    assert name in error.message


def test_too_many_files_is_refused_before_anything_is_unpacked() -> None:
    limits = ArchiveLimits(max_files=3)
    files = [(f"f{i}.txt", b"x") for i in range(4)]
    assert refusal(make_zip(files), limits).code == "archive_too_many_files"
    # Folders and macOS resource forks don't count against the limit.
    mac = [*files[:3], *((f"__MACOSX/._f{i}.txt", b"x") for i in range(3)), ("dir/", b"")]
    assert len(expand(make_zip(mac), limits)) == 3


def test_a_directory_of_millions_of_entries_is_refused_from_its_end_record() -> None:
    # Only the end record is rewritten: zipfile would otherwise parse every entry it claims.
    data = bytearray(make_zip([("a.txt", b"a")]))
    end = data.rindex(END_RECORD)
    struct.pack_into("<L", data, end + 12, 50 * MiB)
    assert refusal(bytes(data)).code == "archive_too_many_files"


def test_a_member_or_the_total_over_the_limit_is_refused() -> None:
    noise = os.urandom(2 * MiB)  # incompressible, so the size check speaks, not the ratio one
    one = refusal(make_zip([("big.bin", noise)]), ArchiveLimits(max_member_bytes=MiB))
    assert (one.code, "big.bin" in one.message) == ("archive_too_large", True)
    parts = [(f"part{i}.bin", noise[i * MiB // 2 : (i + 1) * MiB // 2]) for i in range(4)]
    total = refusal(make_zip(parts), ArchiveLimits(max_total_bytes=MiB + 1))
    assert total.code == "archive_too_large"
    assert len(expand(make_zip(parts), ArchiveLimits(max_total_bytes=2 * MiB))) == 4


def test_a_zip_bomb_is_refused_without_inflating_it(zeros_bomb: bytes) -> None:
    assert len(zeros_bomb) < MiB
    started = time.perf_counter()
    error = refusal(zeros_bomb, ArchiveLimits(max_member_bytes=1024 * MiB))
    assert error.code == "archive_bomb"
    assert time.perf_counter() - started < 0.5


def test_a_header_that_understates_the_size_buys_nothing(zeros_bomb: bytes) -> None:
    # Central directory says 1,000 bytes; the data inflates to 200 MB. Reading stops at what
    # the header promised and the checksum then exposes the lie.
    data = bytearray(zeros_bomb)
    entry = data.index(CENTRAL_ENTRY)
    struct.pack_into("<L", data, entry + 24, 1000)
    started = time.perf_counter()
    assert refusal(bytes(data)).code == "archive_corrupt"
    assert time.perf_counter() - started < 0.5


def test_members_sharing_compressed_bytes_are_refused() -> None:
    # The overlapping-member bomb: a second directory entry points at the first member's data.
    data = make_zip([("a.txt", b"hello " * 1000)])
    end = data.rindex(END_RECORD)
    directory_size, directory_at = struct.unpack_from("<LL", data, end + 12)
    directory = data[directory_at : directory_at + directory_size]
    twin = directory.replace(b"a.txt", b"b.txt")
    end_record = bytearray(data[end:])
    struct.pack_into("<HHL", end_record, 8, 2, 2, 2 * directory_size)
    bomb = data[:directory_at] + directory + twin + bytes(end_record)
    assert refusal(bomb).code == "archive_bomb"


def test_one_level_of_nested_zip_is_unpacked_and_deeper_is_refused() -> None:
    inner = make_zip([("q1.txt", b"first quarter"), ("report.docx", b"PK\x03\x04docx")])
    outer = make_zip([("readme.txt", b"hi"), ("reports.zip", inner)])
    # A .docx is a zip too, but it is a document: it comes out whole.
    assert expand(outer) == [
        ("readme.txt", b"hi"),
        ("reports.zip/q1.txt", b"first quarter"),
        ("reports.zip/report.docx", b"PK\x03\x04docx"),
    ]
    # Files inside nested archives count against the same limit.
    assert refusal(outer, ArchiveLimits(max_files=3)).code == "archive_too_many_files"
    deeper = make_zip([("outer.zip", make_zip([("inner.zip", inner)]))])
    error = refusal(deeper)
    assert error.code == "archive_nested"
    assert "outer.zip/inner.zip" in error.message


def test_an_encrypted_member_is_refused() -> None:
    # zipfile cannot write encrypted members; set the "encrypted" flag bit in both headers.
    data = bytearray(make_zip([("secret.txt", b"classified")]))
    for signature, flag_offset in ((b"PK\x03\x04", 6), (CENTRAL_ENTRY, 8)):
        at = data.index(signature)
        data[at + flag_offset] |= 0x1
    error = refusal(bytes(data))
    assert error.code == "archive_encrypted"
    assert "secret.txt" in error.message


def test_compression_that_inflates_without_a_bound_is_refused() -> None:
    data = make_zip([("a.txt", b"text " * 100)], compression=zipfile.ZIP_BZIP2)
    assert refusal(data).code == "archive_unsupported"


def test_damaged_archives_are_refused_as_corrupt() -> None:
    good = make_zip([("a.txt", b"the quick brown fox " * 200), ("b.txt", b"jumps " * 200)])
    flipped = bytearray(good)
    flipped[40] ^= 0xFF  # inside a.txt's compressed data
    nested = make_zip([("inner.zip", b"PK\x03\x04 not really")])
    for damaged in (b"", b"not a zip at all", good[: len(good) // 2], bytes(flipped)):
        assert refusal(damaged).code == "archive_corrupt"
    error = refusal(nested)
    assert (error.code, "'inner.zip'" in error.message) == ("archive_corrupt", True)


def test_random_damage_only_ever_surfaces_as_a_refusal() -> None:
    inner = make_zip([("c.txt", b"inner " * 30)])
    good = make_zip(
        [("a.txt", b"hello world " * 100), ("dir/b.txt", b"x" * 500), ("in.zip", inner)]
    )
    rng = random.Random(7)
    for _ in range(500):
        damaged = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            expand(bytes(damaged))
        except InvalidInput as error:
            assert error.code.startswith("archive_")


def test_a_zip64_end_record_is_followed() -> None:
    # Streaming writers often emit ZIP64 records even for small archives; the 32-bit fields
    # then read 0xFFFFFFFF and the real directory size lives in the ZIP64 record.
    data = make_zip([("a.txt", b"small")])
    end = data.rindex(END_RECORD)
    directory_size, directory_at = struct.unpack_from("<LL", data, end + 12)

    def zip64_tail(size: int) -> bytes:
        record = struct.pack(
            "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 1, 1, size, directory_at
        )
        locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
        legacy = struct.pack("<4s4H2LH", END_RECORD, 0, 0, 0xFFFF, 0xFFFF, 2**32 - 1, 2**32 - 1, 0)
        return record + locator + legacy

    assert expand(data[:end] + zip64_tail(directory_size)) == [("a.txt", b"small")]
    assert refusal(data[:end] + zip64_tail(50 * MiB)).code == "archive_too_many_files"
