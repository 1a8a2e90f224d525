"""The official ANS Cryptolib CPS as a test oracle: unpacked from its RPM, installed in a private mount namespace.

The RPM (``../shared/reference/cryptolib``) is unpacked with Debian's ``rpm2cpio`` and ``cpio`` into a
cache folder, then its three folders are laid over ``/opt/santesocial``, ``/etc/opt/santesocial`` and
``/var/opt/santesocial`` with tmpfs mounts *in the test process's private mount namespace* (see
``tests/conftest.py``): the module finds its configuration, cache and trace folders where it expects
them, and the machine is not touched. The configuration turns the module's traces on at level 10, so
every APDU it exchanges is in ``/var/opt/santesocial/CPS/log/`` for a failed test to show.

Run as a script for a quick look at a virtual card through the Cryptolib::

    python -m tests.cryptolib_harness [--kind cps3|cps4] [--profile gp] -- pkcs11-tool -L
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CRYPTOLIB_RPM",
    "CryptolibInstall",
    "CryptolibUnavailable",
    "install_in_namespace",
    "unpack",
]

CRYPTOLIB_RPM = (
    Path(os.environ.get("DMP_BRIDGE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    / "reference/cryptolib/CryptolibCPS-5.2.2-1.x86_64.rpm"
)
MODULE_RELPATH = Path("opt/santesocial/CPS/lib/libcps3_pkcs11_lux.so")
_TARGETS = ("opt/santesocial", "etc/opt/santesocial", "var/opt/santesocial")
_MS_BIND, _MS_REC = 4096, 0x4000
_MNT_DETACH = 2
# Level 10 traces every APDU (external specification §5).
_TRACING_CONF = "Traces\n{\n\tactive = true;\n\tdebug = 10;\n}\n"


class CryptolibUnavailable(RuntimeError):
    """The Cryptolib cannot be used here (no RPM, no rpm2cpio/cpio, not root): tests skip with this text."""


def unpack(rpm: Path = CRYPTOLIB_RPM, cache: Path | None = None) -> Path:
    """Unpack `rpm` once into a cache folder keyed by its hash; return the unpacked root."""
    if not rpm.is_file():
        raise CryptolibUnavailable(f"Cryptolib RPM not found at {rpm} (../shared/reference/cryptolib)")
    for tool in ("rpm2cpio", "cpio"):
        if shutil.which(tool) is None:
            raise CryptolibUnavailable(f"{tool} missing: install the Debian packages rpm2cpio and cpio")
    digest = hashlib.sha256(rpm.read_bytes()).hexdigest()[:16]
    base = cache or Path(tempfile.gettempdir()) / "dmp-bridge-cryptolib"
    root = base / digest
    if (root / MODULE_RELPATH).is_file():
        return root
    staging = Path(tempfile.mkdtemp(prefix="unpack-", dir=_mkdir(base)))
    rpm2cpio = subprocess.Popen(["rpm2cpio", str(rpm)], stdout=subprocess.PIPE)
    subprocess.run(
        ["cpio", "-idm", "--no-absolute-filenames", "--quiet"],
        stdin=rpm2cpio.stdout,
        cwd=staging,
        check=True,
        stderr=subprocess.DEVNULL,
    )
    if rpm2cpio.wait() != 0 or not (staging / MODULE_RELPATH).is_file():
        raise CryptolibUnavailable(f"unpacking {rpm} gave no {MODULE_RELPATH}")
    try:
        staging.rename(root)
    except OSError:  # another process unpacked it first
        shutil.rmtree(staging, ignore_errors=True)
    return root


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class CryptolibInstall:
    """The Cryptolib as laid out in this process's mount namespace."""

    module: Path
    conf: Path
    log_dir: Path
    cache_dir: Path

    def traces(self) -> str:
        """Every trace file the module wrote, concatenated (for a failed test's report)."""
        if not self.log_dir.is_dir():
            return ""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.rglob("*")) if p.is_file())

    def clear(self) -> None:
        """Forget the traces and the module's card cache (between tests)."""
        for folder in (self.log_dir, self.cache_dir):
            if folder.is_dir():
                for entry in folder.iterdir():
                    if entry.is_dir():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _mount(source: str, target: Path, fstype: str | None, flags: int, data: str | None = None) -> None:
    libc = _libc()
    fs = fstype.encode() if fstype else None
    rc = libc.mount(source.encode(), str(target).encode(), fs, flags, data.encode() if data else None)
    if rc != 0:
        raise CryptolibUnavailable(f"mount {source} on {target}: {os.strerror(ctypes.get_errno())} (root needed)")


def _tmpfs_over(target: Path) -> None:
    """A fresh tmpfs at `target`, creating the mount point without writing to the real filesystem.

    When `target` does not exist, its nearest existing ancestor gets a tmpfs whose children are the
    ancestor's original entries bind-mounted back, plus the missing folders.
    """
    if target.is_dir():
        _mount("tmpfs", target, "tmpfs", 0, "mode=0755")
        return
    ancestor = target.parent
    while not ancestor.is_dir():
        ancestor = ancestor.parent
    originals = Path(tempfile.mkdtemp(prefix="orig-"))
    _mount(str(ancestor), originals, None, _MS_BIND | _MS_REC)
    _mount("tmpfs", ancestor, "tmpfs", 0, "mode=0755")
    for entry in originals.iterdir():
        placeholder = ancestor / entry.name
        if entry.is_dir() and not entry.is_symlink():
            placeholder.mkdir()
        else:
            placeholder.touch()
        _mount(str(entry), placeholder, None, _MS_BIND | _MS_REC)
    _libc().umount2(str(originals).encode(), _MNT_DETACH)
    target.mkdir(parents=True, exist_ok=True)


_installed: dict[Path, CryptolibInstall] = {}


def install_in_namespace(root: Path, *, tracing: bool = True) -> CryptolibInstall:
    """Lay the unpacked Cryptolib over its system folders; only in a private mount namespace, as root.

    Once per process: a second call returns the first install (a new tmpfs over the folders would hide
    the configuration and cache of a module that is already loaded).
    """
    if os.geteuid() != 0 or not os.environ.get("_DMP_BRIDGE_IN_PRIVATE_NS"):
        raise CryptolibUnavailable("the Cryptolib tests need root and the tests' private mount namespace")
    if root in _installed:
        return _installed[root]
    for rel in _TARGETS:
        target = Path("/") / rel
        _tmpfs_over(target)
        source = root / rel
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
    conf = Path("/etc/opt/santesocial/CPS/cps3_pkcs11.conf")
    if tracing:
        conf.write_text(_TRACING_CONF)
    log_dir = _mkdir(Path("/var/opt/santesocial/CPS/log"))
    cache_dir = _mkdir(Path("/etc/opt/santesocial/CPS/cache"))
    install = _installed[root] = CryptolibInstall(Path("/") / MODULE_RELPATH, conf, log_dir, cache_dir)
    return install


def _main() -> int:
    """Dev aid: private namespace + pcscd + one virtual CPS + the Cryptolib, then run a command."""
    import argparse
    import asyncio
    import threading

    from bridge.sim.pcscd import PrivatePcscd, enter_private_namespace, free_port_pair
    from bridge.sim.registry import make_card
    from bridge.sim.vpcd import serve_card

    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", default="cps")
    parser.add_argument("--profile")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()
    enter_private_namespace()
    os.environ["_DMP_BRIDGE_IN_PRIVATE_NS"] = "1"
    install = install_in_namespace(unpack())
    work = Path(tempfile.mkdtemp(prefix="cryptolib-dev-"))
    pcscd = PrivatePcscd(work, free_port_pair())
    pcscd.start()
    card = make_card(args.kind, args.profile)
    loop = asyncio.new_event_loop()
    threading.Thread(
        target=loop.run_until_complete, args=(serve_card(card, "127.0.0.1", pcscd.slot_ports[0]),), daemon=True
    ).start()
    from tests.conftest import wait_card_state

    wait_card_state("Virtual PCD 00 00", present=True)
    os.environ["P0"] = str(pcscd.slot_ports[1])  # a free slot for scripts that insert their own cards
    command = [str(install.module) if part == "MODULE" else part for part in args.command]
    rc = subprocess.run(command).returncode
    print(f"--- traces in {install.log_dir} (copied to {work}/traces.txt)")
    (work / "traces.txt").write_text(install.traces())
    pcscd.stop()
    return rc


if __name__ == "__main__":
    raise SystemExit(_main())
