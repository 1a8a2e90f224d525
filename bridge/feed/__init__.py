"""Systematic feeding of the DMP: a durable outbox fed by the API, HL7v2 over MLLP and a hot folder.

`outbox_store` (SQLite WAL, the state table of `outbox_model`), `outbox` (async access, listeners),
`outbox_worker` (sending, retries with `retry_policy`, the existence check of `outbox_dmp`), `mllp` and
`hl7_message` (sans-IO framing, parsing, ACK and feeding acknowledgement), `hl7_mapping` (ORU^R01 and
MDM^T02 to XDS metadata), `hl7_intake` (the listener and the acknowledgement sender), `hot_folder`.
"""
