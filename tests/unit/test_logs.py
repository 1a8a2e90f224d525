"""Log redaction: NIR/INS and PIN values never reach the log output, even at DEBUG."""

from __future__ import annotations

import io
import logging

from bridge.logs import redact, setup_logging


def test_redact_masks_nir_and_pin() -> None:
    assert redact("patient 178037511501201 vu") == "patient [NIR] vu"
    assert redact("patient 1 78 03 75 115 012 01") == "patient [NIR]"
    assert redact('{"pin": "1234", "x": 1}') == '{"pin": "***", "x": 1}'
    assert redact("reader Virtual PCD 00 00") == "reader Virtual PCD 00 00"


def test_setup_logging_redacts_and_silences_signxml_debug() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        setup_logging(verbose=True, stream=stream)
        logging.getLogger("bridge.test").debug("INS %s pin=%s", "281209935201476", "9999")
        logging.getLogger("signxml").debug("canonicalised assertion with 281209935201476")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    out = stream.getvalue()
    assert "281209935201476" not in out and "9999" not in out
    assert "[NIR]" in out and "pin=***" in out
