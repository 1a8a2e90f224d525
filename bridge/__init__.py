"""dmp-bridge: a local bridge between health smart cards, web applications and the DMP."""

__version__ = "0.1.0"
