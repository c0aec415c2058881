#!/usr/bin/env python3
"""Writes the hand-made seed inputs of fuzz/corpus/<target>/seed_*.

Run from the repository root: python3 fuzz/make_seeds.py. Inputs found by fuzzing
(crash reproducers, merged corpus entries) live next to these seeds and are not
touched. Each seed follows the input grammar documented at the top of its fuzzer.
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed_" + name), "wb") as f:
        f.write(bytes(data))


def u16(v):
    return struct.pack("<H", v)


def u64le(v):
    return struct.pack("<Q", v)


def be64(v):
    return struct.pack(">Q", v)


def decode_seeds():
    t = "decode_fuzzer"
    # mode 0: key 8, value 4, hash_bits 30, hash set, three entries.
    write(t, "entry", [0, 8, 4, 32, 1] + list(b"key00001val1key00002val2key00003val3"))
    # mode 1: FixedString round trips.
    write(t, "fixed", [1] + list(b"0123456789abcdefghijklmnopqrstuv"))
    # mode 2: hashes of "hello world" (OCaml test vector), misaligned by 3.
    write(t, "hash", [2, 3] + list(b"hello world"))
    # mode 3: a valid 4-slot table, hash_bits 30, entry 40, data_bytes 1000.
    table = b"".join(be64(v) for v in (0, 40, 400, 960))
    write(t, "import", [3, 31, 8] + list(u16(39)) + [1] + list(u16(1000)) +
          list(u64le(0x0123456789abcdef)) + list(table))
    # mode 3: slot past data_bytes (rejected).
    table = b"".join(be64(v) for v in (0, 1040))
    write(t, "import_bad", [3, 31, 8] + list(u16(39)) + [1] + list(u16(1000)) +
          list(u64le(7)) + list(table))
    # mode 4: builder, hash_bits 30, entry 40, 3 extra, BitsFor probe, 2-byte hashes.
    hashes = []
    for h in (1, 2, 2, 300, 4000, 40000, 65535):
        hashes += [0] + list(u16(h))
    write(t, "builder", [4, 29] + list(u16(39)) + [3, 29, 10] + list(u16(40)) +
          list(u64le(100000)) + hashes)


if __name__ == "__main__":
    decode_seeds()
