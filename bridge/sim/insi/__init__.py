"""The INSi simulator (téléservice INS): mutual TLS, the official schemas, CNDA-style test identities."""

from bridge.sim.insi.server import INSI_PATH, InsiSimConfig, InsiSimulator
from bridge.sim.insi.service import InsiPolicy

__all__ = ["INSI_PATH", "InsiPolicy", "InsiSimConfig", "InsiSimulator"]
