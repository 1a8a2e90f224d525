"""The DMP client's wire layer, sans-IO: values in, lxml elements or bytes out.

ns/codes (identifiers), failures (errors and DMP faults as values), vihf + vihf_cache (SAML token),
soap + mtom (envelope, multipart), xds_model/xds_build/xds_parse (XDS.b metadata), transactions
(ITI-41/18/43/57 bodies), xades (submission-set signature), cda (CDA R2 level-1 documents).
"""
