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


MASK32 = 0xFFFFFFFF


def _rotl(x, r):
    return ((x << r) | (x >> (32 - r))) & MASK32


def _mix(h, d):
    d = (d * 0xCC9E2D51) & MASK32
    d = _rotl(d, 15)
    d = (d * 0x1B873593) & MASK32
    h ^= d
    h = _rotl(h, 13)
    return (h * 5 + 0xE6546B64) & MASK32


def ocaml_hash(s):
    """OCaml Hashtbl.hash on a string (30 bits), docs/format.md section 4.2."""
    h = 0
    i = 0
    while i + 4 <= len(s):
        h = _mix(h, int.from_bytes(s[i:i + 4], "little"))
        i += 4
    if i < len(s):
        h = _mix(h, int.from_bytes(s[i:], "little"))
    h ^= len(s)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    h ^= h >> 16
    return h & 0x3FFFFFFF


def prefix16(key):
    return (key[0] << 8) | key[1]


def header(offset, generation, fan_size, version=b"00000001"):
    return be64(offset & 0xFFFFFFFFFFFFFFFF) + version + be64(generation) + be64(fan_size)


def data_file(records, key_size, hash_fn, hash_bits, k, generation):
    """A data file: records sorted by hash, a 2^k-slot fan-out table."""
    records = sorted(records, key=lambda r: hash_fn(r[:key_size]))
    e = len(records[0]) if records else 1
    slots = [0] * (1 << k)
    for i, r in enumerate(records):
        h = hash_fn(r[:key_size])
        slots[h >> (hash_bits - k)] = i * e
    prev = 0
    for i in range(len(slots)):
        if slots[i] == 0:
            slots[i] = prev
        prev = slots[i]
    table = b"".join(be64(s) for s in slots)
    body = b"".join(records)
    return header(len(body), generation, len(table)) + table + body


def log_file(records, generation):
    body = b"".join(records)
    return header(len(body), generation, 0) + body


SEP = b"KVF|"


def header_input(cfg, data=None, log=None, log_async=None, writes=None):
    pieces = [data or b"", log or b"", log_async or b""]
    if writes is not None:
        pieces.append(writes)
    return bytes([cfg]) + SEP.join(pieces)


def header_seeds():
    t = "header_fuzzer"
    # Schema 0: key 4, value 4, hash = first two key bytes (16 bits).
    recs = [bytes([a, b, 0, i]) + b"v%03d" % i
            for i, (a, b) in enumerate([(0, 1), (0x10, 0), (0x10, 0), (0x55, 3),
                                         (0x80, 0), (0xC0, 7), (0xFF, 0xFF)])]
    data = data_file(recs, 4, prefix16, 16, 2, 1)
    log = log_file([b"\x10\x00\x00\x01new1", b"\x77\x77\x00\x00new2"], 1)
    log_async = log_file([b"\x22\x22\x00\x00asy1"], 2)
    allf = 0b111
    write(t, "store", header_input(allf | (0 << 3) | (1 << 5) | (1 << 6), data, log, log_async,
                                   b"\x10\x00\x00\x01w001\x99\x00\x00\x00w002"))
    write(t, "data_only", header_input(0b001, data))
    write(t, "log_only", header_input(0b010, log=log))
    write(t, "empty_files", header_input(0b111))
    # Header fields that must not drive allocations or reads.
    big = 1 << 62
    write(t, "huge_offset", header_input(0b011, header(big, 1, 8) + be64(0) + recs[0],
                                         header(big, 1, 0) + recs[1]))
    write(t, "huge_fan", header_input(0b001, header(8, 1, big) + be64(0) + recs[0]))
    write(t, "max_fan", header_input(0b010, log=header(0, 0, (1 << 63) - 8) + recs[0]))
    write(t, "neg_offset", header_input(0b010, log=header(-8, 0, 0) + recs[0]))
    write(t, "bad_version", header_input(0b010, log=header(8, 0, 0, b"00000002") + recs[0]))
    write(t, "short", header_input(0b110, log=header(0, 0, 0)[:20], log_async=b"0000"))
    write(t, "misaligned", header_input(0b011, header(13, 1, 12) + b"\0" * 12 + recs[0] * 2,
                                        header(11, 0, 0) + recs[1] * 2))
    # Unsorted data (hash order broken): lookups may miss, nothing may crash.
    bad = header(16, 1, 8) + be64(8) + recs[5] + recs[1]
    write(t, "unsorted", header_input(0b011, bad, log))
    # Schema 3: key 20, value 20, OCaml hash: an OCaml-style store (entry 40 B).
    keys = [b"%020d" % i for i in range(12)]
    recs3 = [k + b"v" * 19 + bytes([48 + i]) for i, k in enumerate(keys)]
    data3 = data_file(recs3[:9], 20, ocaml_hash, 30, 1, 3)
    log3 = log_file(recs3[9:], 3)
    write(t, "ocaml_store", header_input(0b011 | (3 << 3) | (3 << 6), data3, log3))
    # Schema 1 (key 8, value 8, OCaml hash) and 2 (key 4, no value).
    recs1 = [b"key%05d" % i + b"val%05d" % i for i in range(5)]
    write(t, "schema1", header_input(0b011 | (1 << 3),
                                     data_file(recs1, 8, ocaml_hash, 30, 0, 1),
                                     log_file(recs1[:2], 1)))
    recs2 = [bytes([0x20 * i, i, 1, 2]) for i in range(6)]
    write(t, "schema2", header_input(0b011 | (2 << 3), data_file(recs2, 4, prefix16, 16, 3, 1),
                                     log_file(recs2[:1], 1)))


def op(kind, a=0):
    return kind | (a << 4)


def rep(key, overcommit=False):
    return [op(5 if overcommit else 0, key)]


FLUSH, FSYNC, MERGE, TRYMERGE, CLEAR, REOPEN = (op(6), op(7), op(8), op(9), op(10), op(11))


def crash_after(n):
    return [op(12, n)] if n < 15 else [op(12, 15), n]


def crash_now(seed, drop_all=False, no_tear=False):
    return [op(13, (1 if drop_all else 0) | (2 if no_tear else 0)), seed]


def held_merge(keys, fsync=False):
    return [op(14, (len(keys) - 1) | (4 if fsync else 0))] + list(keys)


def inject(which, skip, forever=False):
    return [op(15, which | (4 if forever else 0)), skip]


def fail_merge_at(point):
    return [op(15, 8 | point)]


def recovery_seeds():
    t = "recovery_fuzzer"
    # cfg: hash | (log_size-1) << 2 | lru << 4 | overcommit << 5
    write(t, "basic", [0] + rep(0) + rep(1) + rep(2) + [FSYNC] + rep(1) + [MERGE] +
          rep(2) + rep(3) + [FLUSH] + crash_now(5))
    write(t, "merge_crash", [1 | (1 << 2)] + rep(0) + rep(1) + [FSYNC] + crash_after(6) +
          rep(2) + rep(3) + rep(4) + rep(5))
    write(t, "held_merge", [2 | (3 << 2) | (1 << 4)] + rep(0) + rep(4) + rep(1) +
          held_merge([0, 5, 1], fsync=True) + rep(2) + crash_after(4) + held_merge([3, 3]))
    write(t, "clear_reopen", [3] + rep(0) + rep(1) + [CLEAR] + rep(2) + [REOPEN] + rep(0) +
          [FSYNC] + crash_after(2) + [CLEAR] + crash_now(9, no_tear=True))
    write(t, "io_error", [0 | (1 << 2)] + rep(0) + rep(1) + inject(0, 2) + rep(2) + rep(3) +
          [FSYNC] + [REOPEN] + rep(4) + inject(1, 0, forever=True) + [MERGE] + [REOPEN])
    write(t, "merge_hook_fail", [2 | (2 << 2)] + rep(0) + rep(1) + [MERGE] + rep(4) +
          fail_merge_at(2) + [MERGE] + rep(5) + [FSYNC] + fail_merge_at(1) + rep(6) + rep(7) +
          rep(0) + rep(1) + [REOPEN] + crash_now(3, drop_all=True))
    write(t, "filter", [2 | (1 << 2)] + rep(0) + rep(1) + rep(2) + rep(3) + [op(5, 8 | 1)] +
          rep(4) + [FSYNC] + crash_after(3) + [op(5, 8 | 4 | 2)] + crash_now(4))
    write(t, "many_crashes", [1 | (1 << 5)] + rep(0) + [FSYNC] + crash_after(0) + rep(1) +
          crash_now(1) + rep(2) + rep(3) + crash_after(1) + [MERGE] + crash_now(2) +
          rep(6) + [TRYMERGE] + crash_after(20) + rep(7) + rep(7) + rep(7) + rep(7))


def api(kind, a=0):
    return kind | (a << 5)


def api_seeds():
    t = "api_fuzzer"
    R = lambda k: [api(0, k)]
    FIND = lambda k: [api(7, k)]
    ITER, MERGE, TRY, AWAIT, CLEAR = api(9), api(11), api(12), api(13), api(14)
    FSYNC, FLUSH = api(10, 1), api(10, 0)
    FULL = api(30)
    # cfg: hash | (log_size-1)<<2 | lru<<4 | overcommit<<5 | background<<6 | cache<<7
    write(t, "basic", [0] + R(0) + R(1) + R(2) + FIND(1) + [ITER, FSYNC] + R(1) + [MERGE] +
          FIND(1) + [api(8, 3), FULL])
    write(t, "readers", [1 | (1 << 2)] + R(0) + R(1) + [api(17, 0)] + R(2) + [FLUSH] +
          [api(18, 0), api(19, 0), 2, api(17, 1)] + R(3) + R(4) + R(5) +
          [CLEAR, api(20, 0), api(18, 1), api(20, 1), api(18, 0), api(21, 1)])
    write(t, "background", [2 | (1 << 4) | (1 << 6)] + R(0) + R(4) + R(1) + R(5) + R(2) +
          [api(17, 0)] + R(6) + R(7) + [api(18, 0)] + R(0) + [TRY, AWAIT, api(23), FULL])
    write(t, "filter_close", [3 | (2 << 2)] + R(0) + R(1) + R(2) + R(3) + [MERGE] + R(4) +
          [api(15, 1), FULL, api(16, 0)] + R(5) + [api(15, 6), api(16, 1), ITER])
    write(t, "misuse_callback", [0 | (1 << 7)] + R(0) + [api(17, 0), api(22, 3), api(24, 2),
          api(24, 5), api(25), api(9), api(25), api(23)] + R(1) + [api(16, 0)])
    write(t, "overcommit", [1 | (1 << 5) | (1 << 6)] + [api(6, k) for k in range(8)] +
          [MERGE] + [api(6, k) for k in range(8)] + [CLEAR, MERGE, FULL])
    # Op 29 reopens in the other layout: tiered merges and background compactions with a
    # reader following, a filter, then the conversion back to one data file.
    write(t, "tiered", [0 | (1 << 6)] + [api(29, 0)] + R(0) + R(1) + [MERGE] + R(2) + R(3) +
          [MERGE] + R(4) + [MERGE, api(17, 0)] + R(5) + R(6) +
          [MERGE, AWAIT, api(18, 0), api(20, 0), FULL, api(15, 1), FULL, api(29, 1), FULL,
           api(18, 0), api(20, 0)])


if __name__ == "__main__":
    decode_seeds()
    header_seeds()
    recovery_seeds()
    api_seeds()
