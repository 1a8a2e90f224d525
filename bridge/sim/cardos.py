"""A small ISO 7816-4 card operating system for the virtual cards: bytes in, bytes out, no I/O.

`CardOS` implements `bridge.sim.vpcd.VirtualCard` over a tree of files (`DF`, `TransparentEF`,
`RecordEF`) and answers SELECT, READ BINARY, READ RECORD, UPDATE BINARY and GET RESPONSE. Card
emulators (generic, Vitale, CPS3) subclass it.

Extension API (for subclasses):

- Commands: decorate a method ``def name(self, cmd: Command) -> Reply`` with ``@handles(0x20)`` (one or
  more INS bytes; ``chaining=True`` lets the OS reassemble ISO command chaining, CLA bit 0x10, into a
  single `Command` before the call). Decorated methods of every class in the MRO form the dispatch
  table; a subclass overrides an INS by decorating a method of its own, or by redefining the method
  under the same name (it keeps its INS). A handler returns a `Reply` (data + SW, ``Reply.ok(data)``)
  or raises `ISOError(sw)`; it never deals with T=0 or Le framing: `process` does (see "Transport").
- Access conditions: each file has ``read`` and ``update`` predicates, ``AccessCondition =
  Callable[[CardOS], bool]``; `ALWAYS`, `NEVER` and ``requires("pin1", ...)`` (true when every named
  flag is in ``os.security``) are provided. A handler sets flags in ``self.security`` (e.g. after a
  good VERIFY); `check_access(file, file.read)` raises 6982 when the predicate is false.
- Volatile state: override `reset_volatile` (call ``super().reset_volatile()``); it runs on
  power on, power off, reset and at the end of ``CardOS.__init__`` (so a subclass sets what it needs
  before calling ``super().__init__``). The base clears the current DF/EF, ``security`` flags, the pending
  GET RESPONSE data and any half-received command chain.
- File control data: override `fcp(file)` / `fci(file)`, or give a file ``fcp_extra`` bytes (e.g. an
  ``A1`` security attribute template) appended inside the ``62`` template.
- Helpers for handlers: `lookup_fid`, `resolve_path`, `find_df_by_name`, `make_current`,
  `current_df`, `current_ef`, `mf`.

Transport (`CardConfig.transport`):

- ``Transport.T0``: when a command carries data (case 3/4) or has no Le, response data is never sent
  directly: the card answers ``61 xx`` and serves the data with GET RESPONSE ``00 C0 00 00 xx``
  (Le larger than what is left -> ``6C xx``; smaller -> that many bytes and ``61 xx`` for the rest).
  For a case 2 command (Le, no data) whose Le differs from the data length the card answers
  ``6C xx`` with the exact length, as T=0 cards do for READ BINARY/READ RECORD; the host re-sends.
- ``Transport.T1``: data is answered directly; Le is a maximum (fewer bytes with 9000 is a normal
  short read). More data than Le -> ``6C xx``; more than 256 bytes for a short Le -> the first 256 and
  ``61 xx``, served by GET RESPONSE.

Status words: 6700 wrong length, 6981 incompatible file structure, 6982 security status, 6985 no
pending data for GET RESPONSE, 6986 no current EF, 6A82 file not found, 6A83 record not found,
6A86 wrong P1-P2, 6A87 Lc inconsistent with P1-P2, 6B00 offset beyond the EF, 6881 logical channel
not supported, 6884 chaining not supported, 6D00 INS not supported, 6E00 CLA not supported.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from bridge.pcsc.apdu import Command
from bridge.tlv import encode_tlv

__all__ = [
    "ALWAYS",
    "DF",
    "NEVER",
    "AccessCondition",
    "CardConfig",
    "CardOS",
    "File",
    "Handler",
    "ISOError",
    "RecordEF",
    "Reply",
    "TransparentEF",
    "Transport",
    "handles",
    "requires",
]

MF_FID = 0x3F00
_CHAIN_BIT = 0x10
_SHORT_MAX = 256


class Transport(enum.Enum):
    """How response data leaves the card."""

    #: T=0: data after a case 3/4 command is announced with 61xx and fetched by GET RESPONSE.
    T0 = "T=0"
    #: T=1: data is sent directly with the status word.
    T1 = "T=1"


class ISOError(Exception):
    """Raised by a handler to answer a bare status word (no data)."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"SW {sw:04X}")
        self.sw = sw


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer before transport framing: the full response data and the final SW."""

    data: bytes = b""
    sw: int = 0x9000

    @classmethod
    def ok(cls, data: bytes = b"") -> Reply:
        """Data with 9000."""
        return cls(bytes(data), 0x9000)


AccessCondition = Callable[["CardOS"], bool]


def ALWAYS(_os: CardOS) -> bool:
    """Access condition that is always satisfied."""
    return True


def NEVER(_os: CardOS) -> bool:
    """Access condition that is never satisfied."""
    return False


def requires(*flags: str) -> AccessCondition:
    """Access condition satisfied when every flag is in the card's volatile `security` set."""
    needed = frozenset(flags)

    def condition(os: CardOS) -> bool:
        return needed <= os.security

    condition.__qualname__ = f"requires{tuple(sorted(needed))}"
    return condition


# ---- file tree ------------------------------------------------------------------------------------


@dataclass(eq=False)
class File:
    """Common attributes of every file. `fid` 2 bytes; `sfi` 1..30 (EFs only); `name` = DF name / AID."""

    fid: int | None = None
    sfi: int | None = None
    name: bytes | None = None
    read: AccessCondition = ALWAYS
    update: AccessCondition = NEVER
    lcs: int = 0x05  # life cycle status: operational, activated
    fcp_extra: bytes = b""
    parent: DF | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.fid is not None and not 0 <= self.fid <= 0xFFFF:
            raise ValueError("fid must be 2 bytes")
        if self.sfi is not None and not 1 <= self.sfi <= 30:
            raise ValueError("sfi must be within 1..30")

    def path(self) -> list[File]:
        """Files from the root down to this one."""
        chain: list[File] = []
        node: File | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain[::-1]


_F = TypeVar("_F", bound="File")


@dataclass(eq=False)
class DF(File):
    """A dedicated file (the MF is the DF with FID 3F00 and no parent)."""

    children: list[File] = field(default_factory=list, repr=False)

    def add(self, child: _F) -> _F:
        """Attach `child` under this DF and return it (for chained tree building)."""
        if child.fid is not None and any(c.fid == child.fid for c in self.children):
            raise ValueError(f"duplicate FID {child.fid:04X}")
        if child.sfi is not None and any(c.sfi == child.sfi for c in self.children):
            raise ValueError(f"duplicate SFI {child.sfi}")
        child.parent = self
        self.children.append(child)
        return child

    def walk(self) -> Iterator[File]:
        """This DF and every file below it, depth first."""
        yield self
        for c in self.children:
            if isinstance(c, DF):
                yield from c.walk()
            else:
                yield c


@dataclass(eq=False)
class TransparentEF(File):
    """An EF read by offset (READ BINARY)."""

    data: bytes = b""


@dataclass(eq=False)
class RecordEF(File):
    """A linear EF of records numbered from 1 (READ RECORD)."""

    records: list[bytes] = field(default_factory=list)


# ---- dispatch ----------------------------------------------------------------------------------------

Handler = Callable[["CardOS", Command], Reply]
_H = TypeVar("_H", bound=Callable[..., Reply])
_INS_ATTR = "_cardos_ins"
_CHAINING_ATTR = "_cardos_chaining"


def handles(*ins: int, chaining: bool = False) -> Callable[[_H], _H]:
    """Mark a CardOS method as the handler of the given INS byte(s)."""

    def mark(fn: _H) -> _H:
        setattr(fn, _INS_ATTR, tuple(ins))
        setattr(fn, _CHAINING_ATTR, chaining)
        return fn

    return mark


@dataclass(frozen=True)
class CardConfig:
    """Static behaviour of a card: ATR, transport, accepted CLA bytes and SELECT answer forms."""

    atr: bytes
    transport: Transport = Transport.T0
    #: CLA bytes accepted (chaining bit 0x10 removed first); others are 6881 (an ISO CLA naming a
    #: logical channel) or 6E00. Accepting 0x01 makes channel 1 share the card state of channel 0.
    classes: frozenset[int] = frozenset({0x00})
    #: SELECT P2 values (0x00 FCI, 0x04 FCP, 0x0C nothing) the card accepts; others are 6A86.
    select_p2: frozenset[int] = frozenset({0x00, 0x04, 0x0C})


@dataclass
class _Pending:
    data: bytes
    sw: int


class CardOS:
    """An ISO 7816-4 card: a file tree, volatile state and a table INS -> handler method."""

    _dispatch: ClassVar[dict[int, tuple[str, bool]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls._dispatch = _collect_handlers(cls)

    def __init__(self, config: CardConfig, mf: DF) -> None:
        if mf.fid != MF_FID or mf.parent is not None:
            raise ValueError("the root must be a DF with FID 3F00")
        self.config = config
        self.mf = mf
        self.security: set[str] = set()
        self.current_df: DF = mf
        self.current_ef: File | None = None
        self._pending: _Pending | None = None
        self._chain: tuple[tuple[int, int, int], bytearray] | None = None
        self.reset_volatile()

    # ---- VirtualCard protocol
    def atr(self) -> bytes:
        """The answer to reset."""
        return self.config.atr

    def power_on(self) -> None:
        """Cold start."""
        self.reset_volatile()

    def power_off(self) -> None:
        """Power removed."""
        self.reset_volatile()

    def reset(self) -> None:
        """Warm reset."""
        self.reset_volatile()

    def reset_volatile(self) -> None:
        """Forget everything that does not survive a reset; subclasses extend and call super()."""
        self.security = set()
        self.current_df = self.mf
        self.current_ef = None
        self._pending = None
        self._chain = None

    def process(self, apdu: bytes) -> bytes:
        """Execute one command APDU; return response data and SW1 SW2."""
        try:
            cmd = Command.parse(apdu)
        except ValueError:
            self._pending = None
            return _sw(0x6700)
        if cmd.ins == 0xC0 and (cmd.cla & ~_CHAIN_BIT) in self.config.classes:
            return self._get_response(cmd)
        self._pending = None  # GET RESPONSE must follow immediately
        try:
            reply = self._dispatch_command(cmd)
        except ISOError as err:
            return _sw(err.sw)
        return self._frame(cmd, reply)

    # ---- dispatch, chaining, framing
    def _dispatch_command(self, cmd: Command) -> Reply:
        cla = cmd.cla
        if (cla & ~_CHAIN_BIT) not in self.config.classes:
            raise ISOError(0x6881 if cla & 0x03 and not cla & 0x80 else 0x6E00)
        entry = self._dispatch.get(cmd.ins)
        if entry is None:
            self._chain = None
            raise ISOError(0x6D00)
        name, chaining = entry
        key = (cmd.ins, cmd.p1, cmd.p2)
        if cla & _CHAIN_BIT:
            if not chaining:
                raise ISOError(0x6884)
            if self._chain is None or self._chain[0] != key:
                self._chain = (key, bytearray())
            self._chain[1].extend(cmd.data)
            return Reply.ok()
        if self._chain is not None:
            chained_key, buf = self._chain
            self._chain = None
            if chained_key == key:
                data = bytes(buf) + cmd.data
                cmd = Command(cla, cmd.ins, cmd.p1, cmd.p2, data, cmd.le, extended=len(data) > 255 or cmd.extended)
        handler: Handler = getattr(type(self), name)
        return handler(self, cmd)

    def _frame(self, cmd: Command, reply: Reply) -> bytes:
        data, sw = reply.data, reply.sw
        if not data:
            return _sw(sw)
        le = cmd.le
        if self.config.transport is Transport.T0:
            if le is None or cmd.data:
                return self._announce(data, sw)  # case 3/4 (or case 1): T=0 cannot send data now
            if len(data) == le or len(data) > _SHORT_MAX:
                return self._serve(data, sw, le)  # over 256 bytes: Le bytes now, the rest by 61xx
            return _sw(0x6C00 | (len(data) & 0xFF))  # wrong Le: tell the exact length
        if le is None:
            le = 65536 if cmd.extended else _SHORT_MAX
        if le < len(data) <= _SHORT_MAX:
            return _sw(0x6C00 | (len(data) & 0xFF))
        return self._serve(data, sw, le)  # short reads are fine; over 256 bytes the rest goes by 61xx

    def _announce(self, data: bytes, sw: int) -> bytes:
        self._pending = _Pending(data, sw)
        return _sw(0x6100 | (min(len(data), _SHORT_MAX) & 0xFF))

    def _serve(self, data: bytes, sw: int, le: int) -> bytes:
        """Send up to `le` bytes; keep the rest for GET RESPONSE (61xx)."""
        head, rest = data[:le], data[le:]
        if rest:
            self._pending = _Pending(rest, sw)
            return head + _sw(0x6100 | (min(len(rest), _SHORT_MAX) & 0xFF))
        return head + _sw(sw)

    def _get_response(self, cmd: Command) -> bytes:
        pending, self._pending = self._pending, None
        if cmd.p1 or cmd.p2:
            return _sw(0x6A86)
        if pending is None:
            return _sw(0x6985)
        le = cmd.le if cmd.le is not None else _SHORT_MAX
        available = len(pending.data)
        if le > available:
            self._pending = pending  # the host re-sends with the exact length
            return _sw(0x6C00 | (available & 0xFF))
        return self._serve(pending.data, pending.sw, le)

    # ---- helpers for handlers
    def check_access(self, file: File, condition: AccessCondition) -> None:
        """Raise 6982 unless `condition` holds for this card now (override to answer another SW per file)."""
        if not condition(self):
            raise ISOError(0x6982)

    def make_current(self, file: File) -> None:
        """Make `file` the current file (and its DF the current DF)."""
        if isinstance(file, DF):
            self.current_df, self.current_ef = file, None
        else:
            assert file.parent is not None
            self.current_df, self.current_ef = file.parent, file

    def lookup_fid(self, fid: int) -> File | None:
        """ISO search for SELECT P1=00: MF, the current DF, its children, its parent, the parent's children."""
        if fid == MF_FID:
            return self.mf
        df = self.current_df
        if df.fid == fid:
            return df
        for c in df.children:
            if c.fid == fid:
                return c
        if df.parent is not None:
            if df.parent.fid == fid:
                return df.parent
            for c in df.parent.children:
                if c.fid == fid:
                    return c
        return None

    def resolve_path(self, start: DF, fids: list[int]) -> File | None:
        """Follow `fids` from `start`; a leading 3F00 restarts from the MF (as the CPS3 driver sends it)."""
        node: File = start
        if fids and fids[0] == MF_FID:
            node, fids = self.mf, fids[1:]
        for fid in fids:
            if not isinstance(node, DF):
                return None
            nxt = next((c for c in node.children if c.fid == fid), None)
            if nxt is None:
                return None
            node = nxt
        return node

    def find_df_by_name(self, name: bytes) -> DF | None:
        """The DF whose name equals `name`, else the first whose name starts with it (partial selection)."""
        dfs = [f for f in self.mf.walk() if isinstance(f, DF) and f.name]
        exact = next((d for d in dfs if d.name == name), None)
        if exact is not None:
            return exact
        return next((d for d in dfs if d.name and name and d.name.startswith(name)), None)

    def _ef_by_sfi(self, sfi: int) -> File:
        ef = next((c for c in self.current_df.children if c.sfi == sfi and not isinstance(c, DF)), None)
        if ef is None:
            raise ISOError(0x6A82)
        return ef

    def fcp(self, file: File) -> bytes:
        """The FCP template (tag 62) of `file`."""
        items: list[bytes] = []
        if isinstance(file, TransparentEF):
            items.append(encode_tlv(0x80, len(file.data).to_bytes(2, "big")))
            items.append(encode_tlv(0x82, b"\x01"))
        elif isinstance(file, RecordEF):
            sizes = [len(r) for r in file.records]
            fixed = len(set(sizes)) <= 1
            items.append(encode_tlv(0x80, sum(sizes).to_bytes(2, "big")))
            fdb = 0x02 if fixed else 0x04
            items.append(
                encode_tlv(0x82, bytes((fdb, 0x21)) + max(sizes, default=0).to_bytes(2, "big") + bytes((len(sizes),)))
            )
        else:
            items.append(encode_tlv(0x82, b"\x38"))
        if file.fid is not None:
            items.append(encode_tlv(0x83, file.fid.to_bytes(2, "big")))
        if isinstance(file, DF) and file.name:
            items.append(encode_tlv(0x84, file.name))
        if file.sfi is not None:
            items.append(encode_tlv(0x88, bytes((file.sfi << 3,))))
        items.append(encode_tlv(0x8A, bytes((file.lcs,))))
        return encode_tlv(0x62, b"".join(items) + file.fcp_extra)

    def fci(self, file: File) -> bytes:
        """The FCI template (tag 6F) of `file`: here the FCP content wrapped in 6F."""
        return b"\x6f" + self.fcp(file)[1:]

    # ---- commands
    @handles(0xA4)
    def select(self, cmd: Command) -> Reply:
        """SELECT: P1 00/01/02/03 by FID, 04 by DF name, 08/09 by path; P2 00 FCI, 04 FCP, 0C none."""
        form = cmd.p2 & 0x0C
        if cmd.p2 & 0xF3 or form == 0x08 or cmd.p2 not in self.config.select_p2:
            raise ISOError(0x6A86)
        target = self._select_target(cmd)
        if target is None:
            raise ISOError(0x6A82)
        self.make_current(target)
        if form == 0x0C:
            return Reply.ok()
        return Reply.ok(self.fcp(target) if form == 0x04 else self.fci(target))

    def _select_target(self, cmd: Command) -> File | None:
        p1, data = cmd.p1, cmd.data
        if p1 in (0x00, 0x01, 0x02):
            if p1 == 0x00 and not data:
                return self.mf
            if len(data) != 2:
                raise ISOError(0x6A87)
            fid = int.from_bytes(data, "big")
            if p1 == 0x00:
                return self.lookup_fid(fid)
            want_df = p1 == 0x01
            return next((c for c in self.current_df.children if c.fid == fid and isinstance(c, DF) == want_df), None)
        if p1 == 0x03:
            if data:
                raise ISOError(0x6A87)
            return self.current_df.parent
        if p1 == 0x04:
            if not 1 <= len(data) <= 16:
                raise ISOError(0x6A87)
            return self.find_df_by_name(data)
        if p1 in (0x08, 0x09):
            if not data or len(data) % 2:
                raise ISOError(0x6A87)
            fids = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
            return self.resolve_path(self.mf if p1 == 0x08 else self.current_df, fids)
        raise ISOError(0x6A86)

    def _binary_target(self, cmd: Command) -> tuple[TransparentEF, int]:
        """(EF, offset) for READ/UPDATE BINARY, selecting the EF when P1 carries an SFI."""
        if cmd.p1 & 0x80:
            if cmd.p1 & 0x60:
                raise ISOError(0x6A86)
            ef = self._ef_by_sfi(cmd.p1 & 0x1F)
            offset = cmd.p2
        else:
            if self.current_ef is None:
                raise ISOError(0x6986)
            ef, offset = self.current_ef, ((cmd.p1 & 0x7F) << 8) | cmd.p2
        if not isinstance(ef, TransparentEF):
            raise ISOError(0x6981)
        return ef, offset

    @handles(0xB0)
    def read_binary(self, cmd: Command) -> Reply:
        """READ BINARY (current EF with a 15-bit offset, or by SFI with an 8-bit offset)."""
        if cmd.data:
            raise ISOError(0x6700)
        if cmd.le is None:
            raise ISOError(0x6700)
        ef, offset = self._binary_target(cmd)
        self.check_access(ef, ef.read)
        self.make_current(ef)
        if offset >= len(ef.data) and not (offset == 0 and not ef.data):
            raise ISOError(0x6B00)
        return Reply.ok(ef.data[offset : offset + cmd.le])

    @handles(0xD6)
    def update_binary(self, cmd: Command) -> Reply:
        """UPDATE BINARY within the current size of the EF."""
        if not cmd.data:
            raise ISOError(0x6700)
        ef, offset = self._binary_target(cmd)
        self.check_access(ef, ef.update)
        self.make_current(ef)
        if offset + len(cmd.data) > len(ef.data):
            raise ISOError(0x6B00)
        ef.data = ef.data[:offset] + cmd.data + ef.data[offset + len(cmd.data) :]
        return Reply.ok()

    @handles(0xB2)
    def read_record(self, cmd: Command) -> Reply:
        """READ RECORD: record P1 (1..n) of the current EF or of the EF with SFI P2>>3; mode P2&7 = 04."""
        if cmd.data or cmd.le is None:
            raise ISOError(0x6700)
        if cmd.p2 & 0x07 != 0x04 or cmd.p1 == 0:
            raise ISOError(0x6A86)
        sfi = cmd.p2 >> 3
        if sfi == 0x1F:
            raise ISOError(0x6A86)
        if sfi:
            ef = self._ef_by_sfi(sfi)
        elif self.current_ef is None:
            raise ISOError(0x6986)
        else:
            ef = self.current_ef
        if not isinstance(ef, RecordEF):
            raise ISOError(0x6981)
        self.check_access(ef, ef.read)
        self.make_current(ef)
        if cmd.p1 > len(ef.records):
            raise ISOError(0x6A83)
        return Reply.ok(ef.records[cmd.p1 - 1])


def _collect_handlers(cls: type[CardOS]) -> dict[int, tuple[str, bool]]:
    """INS -> (method name, accepts chaining), later classes in the MRO overriding earlier ones."""
    table: dict[int, tuple[str, bool]] = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            for ins in getattr(member, _INS_ATTR, ()):
                table[ins] = (name, bool(getattr(member, _CHAINING_ATTR)))
    return table


CardOS._dispatch = _collect_handlers(CardOS)


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")
