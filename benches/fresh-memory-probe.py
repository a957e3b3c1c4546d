#!/usr/bin/env python3
"""How long this machine's kernel takes to hand out fresh memory.

Maps an anonymous region and writes one byte into each 4 KiB page, so that every page is
faulted in and zeroed by the kernel, then unmaps it; --rounds times. A process whose memory
grows (the core benchmark's in-memory logs and stream indexes) pays this for every page it
adds. On a virtual machine the cost can vary several-fold from one minute to the next.

    benches/fresh-memory-probe.py [--mib 200] [--rounds 10]
"""

import argparse
import mmap
import resource
import time

PAGE = 4096


def touch(size):
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    region = mmap.mmap(-1, size)
    for offset in range(0, size, PAGE):
        region[offset] = 1
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    region.close()
    system = after.ru_stime - before.ru_stime
    faults = after.ru_minflt - before.ru_minflt
    return wall, system, faults


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200, help="MiB touched per round")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    for round_number in range(1, args.rounds + 1):
        wall, system, faults = touch(args.mib << 20)
        per_fault_us = system / faults * 1e6 if faults else float("nan")
        print(
            f"round {round_number}/{args.rounds}: {args.mib} MiB in {wall * 1e3:.0f} ms, "
            f"system {system * 1e3:.0f} ms, {faults} page faults ({per_fault_us:.1f} µs each)"
        )


if __name__ == "__main__":
    main()
