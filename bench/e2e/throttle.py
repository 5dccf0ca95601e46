#!/usr/bin/env python3
"""Copies stdin to stdout at a fixed rate (bytes per second), like a slow network link.
Usage: throttle.py RATE   (RATE like 10M = 10 MB/s)"""
import os
import sys
import time

def parse(rate: str) -> float:
    units = {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "g": 1e9, "G": 1e9}
    if rate[-1] in units:
        return float(rate[:-1]) * units[rate[-1]]
    return float(rate)

def main() -> None:
    rate = parse(sys.argv[1])
    step = 64 * 1024
    start = time.monotonic()
    sent = 0
    while True:
        data = os.read(0, step)
        if not data:
            break
        view = memoryview(data)
        while view:
            n = os.write(1, view)
            view = view[n:]
        sent += len(data)
        due = start + sent / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)

if __name__ == "__main__":
    main()
