"""Fuzzing corpus against a running bridge (issue 13): random frames and frames derived from every method's
JSON Schema, from a local program and from an unapproved page. Zero crashes: every frame with an id gets
a JSON-RPC answer whose error (if any) carries a stable code other than INTERNAL, the connections stay
open, and the daemon's memory stays bounded. Seeded, so a failure replays; about 4,000 frames."""

from __future__ import annotations

import json
import random
import string
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.app import Application
from bridge.errors import ErrorCode
from tests.api_helpers import PageKey, open_ws, running_bridge

pytestmark = [pytest.mark.usefixtures("home"), pytest.mark.timeout(120)]

SEED = 13
CODES = {c.value for c in ErrorCode}
RSS_BOUND_MB = 150  # growth allowed over the whole corpus (frames are at most a few hundred KB)
# Methods whose success changes what the rest of the run sees: fuzzed only with refused params.
STATEFUL = {"token.rotate"}
PUBLIC = {"bridge.info", "pairing.challenge", "pairing.prove", "pairing.request"}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _text(rng: random.Random, limit: int = 40) -> str:
    alphabet = string.printable + "éàçΩ\u202e\u0000\ud7ff\U0001f600"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, limit)))


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**31, 2**63, -(2**64), rng.randint(-1000, 1000)])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e-320, 3.14])
    if kind == 4:
        return _text(rng)
    if kind == 5:
        return "x" * rng.choice([255, 256, 1025, 5000])
    if kind == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    if kind == 7:
        return {_text(rng, 10): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}
    return [{"k": i} for i in range(rng.choice([10, 300, 3000]))]  # many distinct objects (uniqueItems bait)


def _from_schema(schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A value shaped by `schema`: mostly plausible, sometimes at or past its bounds, sometimes wrong."""
    if not isinstance(schema, dict) or depth > 6 or rng.random() < 0.08:
        return _random_json(rng, depth)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice([*schema["enum"], "not-in-enum"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return _from_schema(rng.choice(schema[key]), rng, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = rng.choice(kind)
    if kind == "object" or "properties" in schema:
        props: dict[str, Any] = schema.get("properties", {})
        out = {name: _from_schema(sub, rng, depth + 1) for name, sub in props.items() if rng.random() < 0.7}
        for name in schema.get("required", []):
            if name in props and rng.random() < 0.9:
                out[name] = _from_schema(props[name], rng, depth + 1)
        if rng.random() < 0.1:
            out[_text(rng, 8)] = _random_json(rng, depth + 1)  # an unknown member
        return out
    if kind == "array":
        size = rng.choice([0, 1, 3, int(schema.get("maxItems", 10)), int(schema.get("maxItems", 10)) + 1])
        return [_from_schema(schema.get("items", {}), rng, depth + 1) for _ in range(min(size, 2000))]
    if kind == "string":
        bound = int(schema.get("maxLength", 64))
        size = rng.choice([0, 1, 4, 13, bound, bound + 1])
        alphabet = rng.choice([string.digits, string.ascii_letters + "+/=", string.printable])
        return "".join(rng.choice(alphabet) for _ in range(min(size, 300_000)))
    if kind in ("integer", "number"):
        low, high = schema.get("minimum", -5), schema.get("maximum", 5)
        return rng.choice([low, high, low - 1, high + 1, 0, 1.5 if kind == "number" else 2])
    if kind == "boolean":
        return rng.choice([True, False, "true"])
    return _random_json(rng, depth)


def _frames(app: Application, rng: random.Random, count: int) -> list[str]:
    """Schema-derived calls (about two thirds) and random frames, all with ids."""
    handlers = [h for h in app.registry if h.name not in STATEFUL]
    frames: list[str] = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.65:
            handler = rng.choice(handlers)
            message: Any = {"jsonrpc": "2.0", "id": i, "method": handler.name}
            message["params"] = _from_schema(handler.params_schema, rng)
        elif roll < 0.85:
            message = {
                "jsonrpc": rng.choice(["2.0", "1.0", 2, None]),
                "id": i,
                "method": rng.choice([_text(rng, 80), "bridge.info", "rpc.discover", "__proto__", "a" * 70]),
                "params": _random_json(rng),
            }
        else:
            message = {"jsonrpc": "2.0", "id": i, "method": "bridge.info", "params": _random_json(rng)}
        frames.append(json.dumps(message))
    frames.append(json.dumps({"jsonrpc": "2.0", "id": count, "method": "token.rotate", "params": {"x": 1}}))
    return frames


async def _fire(ws: aiohttp.ClientWebSocketResponse, frames: list[str]) -> list[dict[str, Any]]:
    """Send the frames in windows of 8 in flight; return every answer."""
    answers: list[dict[str, Any]] = []
    for start in range(0, len(frames), 8):
        window = frames[start : start + 8]
        for frame in window:
            await ws.send_str(frame)
        expected = {json.loads(f)["id"] for f in window}
        while expected:
            message = json.loads(await ws.receive_str(timeout=30))
            if "id" not in message:
                continue  # a notification
            assert message["id"] in expected or message["id"] is None, message
            expected.discard(message["id"])
            answers.append(message)
    return answers


def _check(answers: list[dict[str, Any]]) -> None:
    for answer in answers:
        assert answer.get("jsonrpc") == "2.0", answer
        if "error" in answer:
            code = answer["error"].get("data", {}).get("code")
            assert code in CODES and code != "INTERNAL", answer


@pytest.fixture
async def bridge() -> AsyncIterator[Application]:
    async with running_bridge() as app:
        yield app


async def test_fuzzed_frames_never_crash_the_daemon(bridge: Application) -> None:
    rng = random.Random(SEED)
    before = _rss_mb()
    async with aiohttp.ClientSession() as session:
        local = await open_ws(session, bridge, token=bridge.token)
        page = await open_ws(session, bridge, origin="https://fuzz.example", key=PageKey())
        local_answers = await _fire(local, _frames(bridge, rng, 2500))
        # The page is unapproved: 64 KB frames at most, so its corpus is of small frames.
        small = [f for f in _frames(bridge, rng, 1500) if len(f) < 60_000]
        page_answers = await _fire(page, small)
        _check(local_answers)
        _check(page_answers)
        # The unapproved page got results from the public methods only.
        methods = {json.loads(f)["id"]: json.loads(f)["method"] for f in small}
        assert {methods[a["id"]] for a in page_answers if "result" in a} <= PUBLIC
        # Raw non-JSON and malformed frames too; then both connections still answer.
        for junk in ("", "{", "[]", "[1,2]", "null", '{"jsonrpc":"2.0","id":{}}', "\u0000" * 100, "9" * 5000):
            await local.send_str(junk)
            answer = json.loads(await local.receive_str(timeout=10))
            assert "error" in answer and answer["error"]["data"]["code"] in CODES, answer
        for ws in (local, page):
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": "last", "method": "bridge.info"}))
            assert json.loads(await ws.receive_str(timeout=10))["result"]["name"] == "dmp-bridge"
            await ws.close()
    assert _rss_mb() - before < RSS_BOUND_MB
