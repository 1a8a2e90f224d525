"""Vitale read cost on the emulator, in process: APDUs exchanged and time per read, T=0 vs T=1 side by side.

Run: python -m tests.bench.bench_vitale
"""

from __future__ import annotations

import dataclasses
import time

from bridge.cards.vitale_reader import read_vitale
from bridge.sim.cardos import Transport
from bridge.sim.direct import DirectChannel
from bridge.sim.registry import list_profiles, load_profile
from bridge.sim.vitale import VitaleEmulator, VitaleProfile

ROUNDS = 300


def measure(card: VitaleEmulator) -> tuple[int, float]:
    """(APDUs per read, microseconds per read)."""
    ch = DirectChannel(card)
    read_vitale(ch)
    apdus = len(ch.trace)
    start = time.perf_counter()
    for _ in range(ROUNDS):
        ch.trace.clear()
        read_vitale(ch)
    return apdus, (time.perf_counter() - start) / ROUNDS * 1e6


def main() -> None:
    """Print one line per profile and transport."""
    for name in list_profiles("vitale"):
        profile = VitaleProfile.from_json(load_profile("vitale", name))
        t0 = VitaleEmulator(profile)
        t1 = VitaleEmulator(profile)
        t1.config = dataclasses.replace(t1.config, transport=Transport.T1)
        (n0, us0), (n1, us1) = measure(t0), measure(t1)
        print(f"{name:10s} T=0: {n0:2d} APDUs {us0:7.1f} µs | T=1: {n1:2d} APDUs {us1:7.1f} µs | ratio {us0 / us1:.2f}")


if __name__ == "__main__":
    main()
