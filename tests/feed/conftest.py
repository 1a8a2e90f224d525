"""Fixtures of the feeding tests: the session's test PKI and the real DMP simulator (tests.dmp_fixtures)."""

from tests.dmp_fixtures import dmp_pki, dmp_sim

__all__ = ["dmp_pki", "dmp_sim"]
