"""`dmp-bridge doctor`: the helpdesk's checks of one workstation, each with its French advice.

Each `*_checks` module checks one area and returns `Finding`s (`findings.py`); `run.py` runs them all and
`bundle.py` writes the redacted support bundle. Checks only read: a proposed fix is advice, never applied.
"""
