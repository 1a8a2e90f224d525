"""The daemon's card service on the real stack (pcscd, the CPS backend, the Vitale driver), one module a job.

`service` (PcscCardService: the facade the API and the DMP service use), `sessions` (one session per
reader and the guarded running of card operations), `card_session` (what a session holds), `cps` (the
CPS use cases), `vitale` (the Vitale read), `status` (diagnostics).
"""
