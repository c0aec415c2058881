#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/manifest_fuzzer/seed_*: manifests of
the tiered layout (format in runset/manifest.h), encoded here independently of
the C++ encoder, with XXH3-64 from the system's libxxhash.

Run from the repository root: python3 fuzz/make_manifest_seeds.py.
"""
import ctypes
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus",
                    "manifest_fuzzer")

_xxhash = ctypes.CDLL("libxxhash.so.0")
_xxhash.XXH3_64bits.restype = ctypes.c_uint64
_xxhash.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def manifest(entry_size, generation, next_id, runs, retired, seal=True):
    """runs: (id, generation, records, fan-out slots, slot), newest first."""
    out = b"KVRUNSET" + struct.pack(">IIqQII", 1, entry_size, generation,
                                    next_id, len(runs), len(retired))
    for rid, gen, records, fans, slot in runs:
        size = 32 + 8 * fans + records * entry_size
        out += struct.pack(">QqQQI", rid, gen, records, size, slot)
    for rid in retired:
        out += struct.pack(">Q", rid)
    checksum = _xxhash.XXH3_64bits(out, len(out)) if seal else 0
    return out + struct.pack(">Q", checksum)


def write(name, data):
    os.makedirs(ROOT, exist_ok=True)
    with open(os.path.join(ROOT, "seed_" + name), "wb") as f:
        f.write(data)


def main():
    # A new tiered store: no runs.
    write("empty", manifest(45, 0, 1, [], []))
    # A default store taken over: its data file (id 0) as the only run.
    write("data_run", manifest(45, 7, 1, [(0, 6, 5000, 4, 2)], []))
    # After a merge that folded runs 3 and 2 into run 5 (slot 2).
    write("merged", manifest(40, 12, 6,
                             [(5, 12, 700, 8, 2), (4, 10, 3000, 32, 3),
                              (0, 2, 9000, 64, 5)],
                             [3, 2]))
    # After a clear: every run retired.
    write("cleared", manifest(40, 13, 6, [], [5, 4, 0]))
    # Broken: run ids out of order (fields checked after the checksum).
    write("bad_order", manifest(40, 12, 6,
                                [(4, 12, 10, 1, 0), (5, 10, 10, 1, 1)], []))
    # Broken: checksum left at zero.
    write("bad_checksum", manifest(40, 1, 2, [(1, 1, 3, 1, 0)], [], seal=False))


if __name__ == "__main__":
    main()
