#!/usr/bin/env python3
"""Write a `git fast-import` stream of a synthetic history to stdout.

Used by scripts/gen-repo.sh (see there); deterministic for a given seed.

The tree has DIRS directories of FILES text files each. The first commit adds
every file; each later commit on refs/heads/main edits CHANGES files (replace,
insert or delete a line), so every commit brings one commit object, CHANGES
blobs and the root tree plus one tree per touched directory: about
1 + 2 * CHANGES + 1 objects per commit. A `checkpoint` at each fraction in
--checkpoints closes fast-import's current pack and starts a new one, so the
repository ends up with one pack per segment. Every --branch-every commits a
branch is created, every --tag-every commits an annotated tag (tag objects).

usage: gen-history.py [--commits N] [--dirs D] [--files F] [--changes C]
                      [--checkpoints 0.4,0.7,0.9] [--branch-every N]
                      [--tag-every N] [--seed S]
"""
import argparse
import random
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=32000)
    ap.add_argument("--dirs", type=int, default=64)
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--changes", type=int, default=4)
    ap.add_argument("--checkpoints", default="0.4,0.7,0.9")
    ap.add_argument("--branch-every", type=int, default=160)
    ap.add_argument("--tag-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    rnd = random.Random(a.seed)
    words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rnd.randint(2, 10)))
             for _ in range(4000)]

    def line():
        return " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 9)))

    paths = ["d%02x/f%03d.c" % (d, f) for d in range(a.dirs) for f in range(a.files)]
    files = {p: [line() for _ in range(rnd.randint(8, 40))] for p in paths}
    checkpoints = {int(float(x) * a.commits) for x in a.checkpoints.split(",") if x.strip()}

    out = sys.stdout.buffer
    buf = []

    def emit(s):
        buf.append(s if isinstance(s, bytes) else s.encode())

    def data(b):
        emit(b"data %d\n" % len(b))
        emit(b)
        emit(b"\n")

    def flush():
        out.write(b"".join(buf))
        buf.clear()

    ts = 1_500_000_000
    for c in range(1, a.commits + 1):
        ts += rnd.randint(30, 3600)
        ident = "Dev %d <dev%d@example.com> %d +0000" % (c % 37, c % 37, ts)
        emit("commit refs/heads/main\nmark :%d\nauthor %s\ncommitter %s\n" % (c, ident, ident))
        data(("change %d: %s\n" % (c, line())).encode())
        touched = paths if c == 1 else rnd.sample(paths, a.changes)
        for p in touched:
            lines = files[p]
            if c > 1:
                op = rnd.random()
                i = rnd.randrange(len(lines))
                if op < 0.5:
                    lines[i] = line()
                elif op < 0.85 or len(lines) < 4:
                    lines.insert(i, line())
                else:
                    del lines[i]
            emit("M 100644 inline %s\n" % p)
            data(("\n".join(lines) + "\n").encode())
        emit("\n")
        if c % a.branch_every == 0:
            emit("reset refs/heads/feature/%05d\nfrom :%d\n\n" % (c, c))
        if c % a.tag_every == 0:
            emit("tag v%d.%d\nfrom :%d\ntagger %s\n" % (c // 1000, c % 1000, c, ident))
            data(("release %d\n" % c).encode())
        if c in checkpoints:
            emit("checkpoint\n\n")
        if len(buf) > 4096:
            flush()
    flush()


if __name__ == "__main__":
    main()
