#!/usr/bin/env python3
"""How long this machine's disk takes to make a small WAL-like write durable.

Writes 300 bytes at a time into a file whose blocks are already written (as raftlog's WAL
writes into a zero-filled segment) and times each fdatasync. With --streams N it runs N such
writers at once, on N files of the same directory, as the N nodes of a local cluster do: if
the disk serialises flushes, each one then takes about N times as long.

    benches/fdatasync-probe.py [--dir /tmp] [--streams 3] [--count 3000]
"""

import argparse
import os
import sys
import tempfile
import time
from multiprocessing import Pool

WRITE_BYTES = 300


def probe(args):
    directory, count = args
    fd, path = tempfile.mkstemp(dir=directory, prefix="fdatasync-probe-")
    try:
        os.write(fd, b"\0" * (count * WRITE_BYTES))
        os.fsync(fd)
        latencies = []
        for i in range(count):
            os.pwrite(fd, b"x" * WRITE_BYTES, i * WRITE_BYTES)
            started = time.perf_counter()
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        os.unlink(path)
    latencies.sort()
    return [latencies[len(latencies) * q // 100] * 1e3 for q in (50, 90, 99)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to write")
    parser.add_argument("--streams", type=int, default=1, help="concurrent writers")
    parser.add_argument("--count", type=int, default=3000, help="flushes per writer")
    args = parser.parse_args()
    if args.streams < 1 or args.count < 100:
        sys.exit("need --streams >= 1 and --count >= 100")
    with Pool(args.streams) as pool:
        results = pool.map(probe, [(args.dir, args.count)] * args.streams)
    for number, (p50, p90, p99) in enumerate(results, 1):
        print(f"writer {number}/{args.streams}: fdatasync p50 {p50:.3f} ms, "
              f"p90 {p90:.3f} ms, p99 {p99:.3f} ms")


if __name__ == "__main__":
    main()
