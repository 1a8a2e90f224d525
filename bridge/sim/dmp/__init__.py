"""DMP simulator: a strict, persistent stand-in for the national DMP web services (sandbox and tests).

It checks what the real service checks and never imports the client's builders (`bridge.dmp`):

- transport: HTTPS TLS 1.2 only, the four "Accès LPS" suites of PDT-INF-579v4, client certificate
  required and chained to the test IGC-Santé bundle; paths `/si-dmp-server/v2/services/{patients,
  registry,repository,habilitations,patientsSpecific,patientsPDQ}`; SOAP 1.2 (a SOAP 1.1 envelope gets
  `soap:VersionMismatch`); WS-Addressing Action must be one the endpoint serves
  (`wsa:ActionNotSupported`), MessageID required;
- VIHF: one signed saml2:Assertion in wsse:Security, enveloped XML-DSig (RSA-SHA1/SHA-2) by a
  certificate of the test CA whose DN is the Issuer; the attributes of the official samples; in
  DIRECTE mode the TLS client certificate has the VIHF signer's DN (same card holder);
- TD2.1: complete XDS metadata, one XAdES signature document whose Manifest covers the submission
  set and every document with matching digests, INS with a valid NIR key, patient = VIHF patient.

Assumptions (no public source; see notes §9):
- fault subcodes other than `DMPInvalidCertificate` and `DMPClosed` are named by us (`FaultCode`);
  functional refusals use the standard XDS codes in RegistryResponse/AdhocQueryResponse;
- a VIHF is valid for 8 hours after IssueInstant (5 minutes of clock skew), plus Conditions if any;
- ITI-57 visibility changes create a new version (same lid, new entryUUID, older one Deprecated);
  what is visible is decided on the current version; only the author (or sender) may delete;
- patient-level transactions (issue 10): authorisations with their history, médecins traitants, blocked
  professionals and the Mon espace santé flag live in `authorizations.py` (a professional with no row is
  not authorised: AUTORISATION NON_EXISTE); TD0.3/TD1.6 in `habilitations.py`, TD1.3a/b/TD1.4 in
  `patient_admin.py`, TD0.4/TD0.5 in `patient_lists.py`; the rights matrix of `bridge.dmp.rights` is applied
  to each caller (refusal: DMPAccessDeniedByRightsService; note 10: DMPNotAllowedForMesDmp); document
  transactions do not check the authorisation here (feeding needs none; reading is left to the document
  transactions' rights enforcement, issue 11);
  an unknown INS answers queryResponseCode NF with no patient;
- registry and repository answers are MTOM, even faults (kit binding); the patient service is plain;
- the patient's own view (INVISIBLE_PATIENT hides documents) is simulated with the HTTP header
  `X-DMP-Sim-Viewer: patient`;
- the XAdES XML-DSig schema is not enforced (the official sample's Signature/@Id is a bare GUID),
  and Document/@id may differ from its ExtrinsicObject id by case only (the official TD2.1 sample).
"""

from __future__ import annotations

from bridge.sim.dmp.server import BASE_PATH, PATIENT_VIEW_HEADER, DmpSimulator, SimConfig, server_ssl_context

__all__ = ["BASE_PATH", "PATIENT_VIEW_HEADER", "DmpSimulator", "SimConfig", "server_ssl_context"]
