"""The INSi téléservice (INS search and verification): pure messages, the fault table, the I/O client."""
