"""Figures of the CPS stack, measured side by side in one run: SHA-256 state export, test PKI, card operations.

Run: `python -m tests.bench.bench_cps` from the repository root. Prints timings and ratios; not collected
by pytest. Card operations go through DirectChannel (no pcscd), so they show the bridge's own cost; through
pcscd + vpcd each APDU adds the socket round trip (about 49 ms measured with the current vpcd client,
0.4 ms with TCP_NODELAY + TCP_QUICKACK on its socket).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.cards.cps3 import Cps3Card, card_keys
from bridge.crypto.pki import TestPki
from bridge.crypto.sha256_state import Sha256State, split_for_card
from bridge.sim.cps3 import create_card
from bridge.sim.direct import DirectChannel
from tests.bench._support import timeit


def main() -> None:
    """Print the figures."""
    message = os.urandom(4096)
    ours = timeit(lambda: split_for_card(message), 20)
    theirs = timeit(lambda: hashlib.sha256(message).digest(), 200)
    full = Sha256State()
    full.update(message)
    assert full.digest() == hashlib.sha256(message).digest()
    print(
        f"SHA-256 split of 4 KiB (pure Python): {ours:.2f} ms; hashlib full hash {theirs:.4f} ms;"
        f" ratio {ours / theirs:.0f}x"
    )
    print(f"RSA-2048 key generation: {timeit(lambda: rsa.generate_private_key(65537, 2048), 5):.0f} ms (median of 5)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DMP_BRIDGE_HOME"] = tmp
        start = time.perf_counter()
        pki = TestPki.load_or_create(Path(tmp) / "pki")
        created = (time.perf_counter() - start) * 1000
        reload = timeit(lambda: TestPki.load_or_create(Path(tmp) / "pki"), 5)
        print(f"Test PKI: created in {created:.0f} ms, reopened from disk in {reload:.1f} ms ({created / reload:.0f}x)")
        start = time.perf_counter()
        card = create_card("gp", pki)
        first = (time.perf_counter() - start) * 1000
        again = timeit(lambda: create_card("gp", pki), 5)
        print(f"Virtual CPS 'gp': first build {first:.0f} ms (2 keys), cached build {again:.1f} ms")

        ch = DirectChannel(card)
        session = Cps3Card()
        read = timeit(lambda: Cps3Card().read_public(DirectChannel(card)), 10)
        session.read_public(ch)
        ch.trace.clear()
        session.read_public(ch)
        print(f"read_public: {read:.1f} ms, {len(ch.trace)} APDU exchanges (x 49 ms on vpcd today)")
        session.verify_pin(ch, bytearray(b"1234"))
        auth, sign = card_keys(lambda fn: fn(ch), session)
        data = os.urandom(2000)
        t_auth = timeit(lambda: auth.sign(data, padding.PKCS1v15(), hashes.SHA256()), 20)
        t_sign = timeit(lambda: sign.sign(data, padding.PKCS1v15(), hashes.SHA256()), 20)
        soft = card.certs.auth.key
        t_soft = timeit(lambda: soft.sign(data, padding.PKCS1v15(), hashes.SHA256()), 20)
        print(
            f"Signature of 2000 bytes: auth key {t_auth:.1f} ms, signature key (PSO HASH+CDS) {t_sign:.1f} ms, "
            f"software key {t_soft:.1f} ms; card-path overhead {t_auth / t_soft:.1f}x / {t_sign / t_soft:.1f}x"
        )


if __name__ == "__main__":
    main()
