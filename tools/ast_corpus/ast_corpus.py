#!/usr/bin/env python3
"""Shoal's AST corpus: real Python sources parsed with Python's own `ast` module and
written as one compact binary file in the spirit of a Dart Kernel binary - a header,
a node-kind table, a string table, an index, and one self-contained section per module
that loads independently. docs/ast_format.md specifies format version 1.

  ast_corpus.py write [--src DIR] [--copies N] [--min-nodes N] [--limit N] OUT.sast
  ast_corpus.py check [--counts] FILE.sast   decode every section, print per-kind counts

`write` defaults to the interpreter's standard library. Files that do not parse (or
cannot be read as UTF-8) are skipped and counted. `check` is the reference decoder: it
verifies magic, version, bounds, CRCs and that every child reference points backwards.
"""
import argparse
import ast
import collections
import os
import struct
import sys
import sysconfig
import zlib

MAGIC = b"SHOALAST"
SECTION_MAGIC = b"MODL"
VERSION = 1
HEADER = struct.Struct("<8sIIIIQQQ")  # magic, version, kinds, strings, modules, 3 offsets

T_NONE, T_NODE, T_LIST, T_STR, T_INT, T_BIGINT, T_FLOAT, T_TRUE, T_FALSE, T_BYTES, T_COMPLEX, T_ELLIPSIS = range(12)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


class Writer:
    def __init__(self):
        self.strings, self.string_ids = [], {}
        self.kinds, self.kind_ids = [], {}

    def sid(self, s):
        i = self.string_ids.get(s)
        if i is None:
            i = self.string_ids[s] = len(self.strings)
            self.strings.append(s)
        return i

    def kid(self, node):
        cls = type(node)
        i = self.kind_ids.get(cls)
        if i is None:
            i = self.kind_ids[cls] = len(self.kinds)
            self.kinds.append((self.sid(cls.__name__), [self.sid(f) for f in cls._fields]))
        return i

    def section(self, tree):
        """Nodes in post-order (children first), so every reference points backwards."""
        body, count = bytearray(), 0

        def value(v):
            if v is None:
                return bytes([T_NONE])
            if isinstance(v, ast.AST):
                return bytes([T_NODE]) + varint(emit(v))
            if isinstance(v, list):
                parts = [value(x) for x in v]
                return bytes([T_LIST]) + varint(len(parts)) + b"".join(parts)
            if v is True:
                return bytes([T_TRUE])
            if v is False:
                return bytes([T_FALSE])
            if v is Ellipsis:
                return bytes([T_ELLIPSIS])
            if isinstance(v, str):
                return bytes([T_STR]) + varint(self.sid(v))
            if isinstance(v, int):
                if -(1 << 63) <= v < (1 << 63):
                    return bytes([T_INT]) + varint(zigzag(v) & ((1 << 64) - 1))
                return bytes([T_BIGINT]) + varint(self.sid(str(v)))
            if isinstance(v, float):
                return bytes([T_FLOAT]) + struct.pack("<d", v)
            if isinstance(v, complex):
                return bytes([T_COMPLEX]) + struct.pack("<dd", v.real, v.imag)
            if isinstance(v, bytes):
                return bytes([T_BYTES]) + varint(len(v)) + v
            raise TypeError("unexpected AST field value %r" % (v,))

        def emit(node):
            nonlocal count
            kind = self.kid(node)
            fields = b"".join(value(getattr(node, f, None)) for f in type(node)._fields)
            body.extend(varint(kind) + varint(getattr(node, "lineno", 0) or 0) + fields)
            count += 1
            return count - 1

        sys.setrecursionlimit(100000)
        emit(tree)
        return SECTION_MAGIC + struct.pack("<I", count) + bytes(body), count


def sources(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            if f.endswith(".py"):
                yield os.path.join(dirpath, f)


def write(args):
    src = args.src or sysconfig.get_paths()["stdlib"]
    w = Writer()
    sections, index = [], []
    parsed = skipped = 0
    files = list(sources(src))
    if args.limit:
        files = files[: args.limit]
    trees = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                trees.append((os.path.relpath(path, src), ast.parse(fh.read(), path)))
            parsed += 1
        except (SyntaxError, UnicodeDecodeError, ValueError, RecursionError, OSError):
            skipped += 1
    encoded = []  # each module's section, encoded once: copies repeat the same bytes
    for name, tree in trees:
        data, count = w.section(tree)
        encoded.append((name, data, count, zlib.crc32(data)))
    copies = args.copies
    per_copy = sum(c for _, _, c, _ in encoded)
    if args.min_nodes and per_copy:
        copies = max(copies, -(-args.min_nodes // per_copy))
    for copy in range(copies):
        for name, data, count, crc in encoded:
            module = name if copy == 0 else "%s#%d" % (name, copy)
            sections.append(data)
            index.append((w.sid(module), len(data), count, crc))
    kinds = b"".join(varint(n) + varint(len(f)) + b"".join(varint(x) for x in f) for n, f in w.kinds)
    strings = b"".join(varint(len(b)) + b for b in (s.encode("utf-8", "surrogatepass") for s in w.strings))
    kinds_off = HEADER.size
    strings_off = kinds_off + len(kinds)
    sections_off = strings_off + len(strings)
    offsets, off = [], sections_off
    for data in sections:
        offsets.append(off)
        off += len(data)
    index_off = off
    idx = b"".join(varint(n) + struct.pack("<QQII", o, ln, c, crc) for (n, ln, c, crc), o in zip(index, offsets))
    with open(args.out, "wb") as out:
        out.write(HEADER.pack(MAGIC, VERSION, len(w.kinds), len(w.strings), len(sections), kinds_off, strings_off, index_off))
        out.write(kinds)
        out.write(strings)
        for data in sections:
            out.write(data)
        out.write(idx)
    nodes = sum(c for _, _, c, _ in index)
    print("%s: %d modules (%d files parsed, %d skipped, x%d), %d nodes, %d kinds, %d strings, %d bytes"
          % (args.out, len(sections), parsed, skipped, copies, nodes, len(w.kinds), len(w.strings), index_off + len(idx)))


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def need(self, n, what):
        if self.p + n > len(self.d):
            raise ValueError("truncated at offset %d: expected %s" % (self.p, what))

    def varint(self, what):
        n = shift = 0
        while True:
            self.need(1, what)
            b = self.d[self.p]
            self.p += 1
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7
            if shift > 63:
                raise ValueError("offset %d: varint too long in %s" % (self.p, what))


def check(args):
    data = open(args.file, "rb").read()
    if len(data) < HEADER.size:
        raise ValueError("truncated at offset 0: expected a %d-byte header" % HEADER.size)
    magic, version, nkinds, nstrings, nmodules, kinds_off, strings_off, index_off = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError("offset 0: bad magic %r" % magic)
    if version != VERSION:
        raise ValueError("offset 8: unsupported version %d" % version)
    r = Reader(data)
    r.p = kinds_off
    kinds = []
    for _ in range(nkinds):
        name = r.varint("kind name")
        kinds.append((name, [r.varint("field name") for _ in range(r.varint("field count"))]))
    r.p = strings_off
    strings = []
    for _ in range(nstrings):
        n = r.varint("string length")
        r.need(n, "string bytes")
        strings.append(data[r.p:r.p + n].decode("utf-8", "surrogatepass"))
        r.p += n
    r.p = index_off
    per_kind = collections.Counter()
    total = 0
    for m in range(nmodules):
        r.varint("module name")
        r.need(24, "index entry")
        off, length, count, crc = struct.unpack_from("<QQII", data, r.p)
        r.p += 24
        if off + length > index_off or zlib.crc32(data[off:off + length]) != crc:
            raise ValueError("index entry %d: section at offset %d out of bounds or CRC mismatch" % (m, off))
        s = Reader(data[:off + length])
        s.p = off
        s.need(8, "section header")
        if data[off:off + 4] != SECTION_MAGIC or struct.unpack_from("<I", data, off + 4)[0] != count:
            raise ValueError("offset %d: bad section header" % off)
        s.p += 8
        has_parent = bytearray(count)
        for i in range(count):
            k = s.varint("node kind")
            if k >= nkinds:
                raise ValueError("offset %d: node kind %d out of range" % (s.p, k))
            s.varint("line")
            per_kind[strings[kinds[k][0]]] += 1

            def val():
                s.need(1, "value tag")
                t = s.d[s.p]
                s.p += 1
                if t == T_NODE:
                    c = s.varint("child")
                    if c >= i:
                        raise ValueError("offset %d: child reference not backwards" % s.p)
                    if has_parent[c]:
                        raise ValueError("offset %d: node %d is the child of two nodes" % (s.p, c))
                    has_parent[c] = 1
                elif t == T_LIST:
                    for _ in range(s.varint("list length")):
                        val()
                elif t in (T_STR, T_BIGINT):
                    if s.varint("string id") >= nstrings:
                        raise ValueError("offset %d: string id out of range" % s.p)
                elif t == T_INT:
                    s.varint("int")
                elif t == T_FLOAT:
                    s.need(8, "float")
                    s.p += 8
                elif t == T_COMPLEX:
                    s.need(16, "complex")
                    s.p += 16
                elif t == T_BYTES:
                    n = s.varint("bytes length")
                    s.need(n, "bytes")
                    s.p += n
                elif t not in (T_NONE, T_TRUE, T_FALSE, T_ELLIPSIS):
                    raise ValueError("offset %d: unknown value tag %d" % (s.p - 1, t))

            for _ in kinds[k][1]:
                val()
        if s.p != off + length:
            raise ValueError("offset %d: section ends early" % s.p)
        if count and not all(has_parent[:count - 1]):
            raise ValueError("offset %d: a node other than the root has no parent" % off)
        total += count
    if args.counts:  # every kind, by name: what the C++ loader's counts are compared with
        for name in sorted(per_kind):
            print("%s %d" % (name, per_kind[name]))
        return
    print("%s: %d modules, %d nodes, %d kinds, %d strings: ok" % (args.file, nmodules, total, nkinds, nstrings))
    for name, n in per_kind.most_common(5):
        print("  %-12s %d" % (name, n))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--src")
    w.add_argument("--copies", type=int, default=1)
    w.add_argument("--limit", type=int, default=0)
    w.add_argument("--min-nodes", type=int, default=0,
                   help="repeat the corpus (as --copies) until it has at least this many nodes")
    w.add_argument("out")
    c = sub.add_parser("check")
    c.add_argument("--counts", action="store_true", help="print the node count of every kind, by name")
    c.add_argument("file")
    args = p.parse_args()
    try:
        (write if args.cmd == "write" else check)(args)
    except ValueError as e:
        print("ast_corpus: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
