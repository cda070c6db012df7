"""How large an OLE compound file's directory is, read without opening the file.

olefile, which extract-msg opens Outlook items with, checks each directory entry against
those before it, so opening a file of many tiny streams takes time quadratic in their
number (24,000 entries, 4 MB, take seconds; a 25 MB file of them, minutes), and extract-msg
opens a file twice; and each stream extract-msg looks up is found by a scan of its storage's
members, so an item of thousands of recipients or attachments (each a storage) takes
seconds more. `directory_size` follows the directory's sector chain through the FAT
(MS-CFB: the header, the DIFAT and the FAT sectors it names), reading the directory's
sectors and nothing else, so an item too large in either way is left closed before olefile
sees it. A structure it cannot follow answers None.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

_HEADER = 512
_LAST_REGULAR = 0xFFFFFFF9  # larger sector numbers are markers (end of chain, free, FAT, DIFAT)
_ENTRY = 128  # bytes of one directory entry
_HEADER_DIFAT = 109  # FAT sector numbers kept in the header itself
_STORAGE = 1  # a directory entry's object type, at offset 0x42


class Directory(NamedTuple):
    entries: int  # directory entries the chain holds, used or not
    storages: int  # of them, storages (an item's recipients, attachments, embedded items)


def directory_size(data: bytes) -> Directory | None:
    """The size of the file's directory, or None when its structure cannot be followed."""
    if len(data) < _HEADER:
        return None
    shift = struct.unpack_from("<H", data, 0x1E)[0]
    if shift not in (9, 12):  # 512- or 4096-byte sectors, the only two MS-CFB allows
        return None
    size = 1 << shift
    sectors = len(data) // size  # an upper bound on any honest chain's length
    fat_count, first_directory = struct.unpack_from("<II", data, 0x2C)
    first_difat = struct.unpack_from("<I", data, 0x44)[0]
    fat = list(struct.unpack_from(f"<{_HEADER_DIFAT}I", data, 0x4C))
    difat, hops = first_difat, 0
    while difat <= _LAST_REGULAR and len(fat) < fat_count:
        hops += 1
        sector = _sector(data, difat, size)
        if sector is None or hops > sectors:
            return None
        numbers = struct.unpack(f"<{size // 4}I", sector)
        fat.extend(numbers[:-1])  # the last number names the next DIFAT sector
        difat = numbers[-1]
    fat = fat[:fat_count]
    chain, storages, sector_number = 0, 0, first_directory
    while sector_number <= _LAST_REGULAR:
        chain += 1
        directory = _sector(data, sector_number, size)
        if chain > sectors or directory is None:  # longer than the file (a loop), or past its end
            return None
        storages += sum(1 for offset in range(0x42, size, _ENTRY) if directory[offset] == _STORAGE)
        index, slot = divmod(sector_number, size // 4)
        fat_sector = _sector(data, fat[index], size) if index < len(fat) else None
        if fat_sector is None:
            return None
        sector_number = struct.unpack_from("<I", fat_sector, slot * 4)[0]
    return Directory(chain * (size // _ENTRY), storages)


def _sector(data: bytes, number: int, size: int) -> bytes | None:
    """Sector `number` (the header fills the first sector's room), or None past the end."""
    if number > _LAST_REGULAR:
        return None
    start = (number + 1) * size
    return data[start:start + size] if start + size <= len(data) else None
