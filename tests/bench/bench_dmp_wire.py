"""Figures of the DMP wire layer, measured side by side in one run.

Run: `DMP_BRIDGE_SHARED=/work/shared python -m tests.bench.bench_dmp_wire` (the TD3.1 figure needs the
official samples). Prints timings and ratios; not collected by pytest.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from lxml import etree

from bridge.dmp.codes import AuthMode, SignatureAlgorithm
from bridge.dmp.mtom import MtomPart, build_mtom, inline_xop
from bridge.dmp.soap import parse_soap_response
from bridge.dmp.vihf import build_vihf, sign_vihf
from bridge.dmp.vihf_cache import VihfCache, VihfKey
from bridge.dmp.xades import SignedDocument, XadesProfile, build_xades_signature
from bridge.dmp.xds_parse import parse_query_response
from tests.bench._support import timeit
from tests.unit._dmp_support import MESSAGES, make_signer, vihf_context


def main() -> None:
    """Print the figures."""
    signer = make_signer(Path(tempfile.mkdtemp()))
    ctx = vihf_context(
        assertion_id="_bench", issue_instant=dt.datetime.now(dt.UTC), issuer_dn="CN=bench", lps_homologation="X"
    )
    sign_ms = timeit(lambda: sign_vihf(build_vihf(ctx), signer.key, [signer.cert]), 30)
    cache = VihfCache(lifetime=3600)
    key = VihfKey("899900063480", "207058575627097", AuthMode.DIRECTE)
    cache.put(key, sign_vihf(build_vihf(ctx), signer.key, [signer.cert]))
    hit_ms = timeit(lambda: cache.get_or_sign(key, lambda: None), 200)
    print(f"VIHF build+sign (RSA-2048 software, SHA-256): {sign_ms:.2f} ms")
    print(f"VIHF cache hit (deep copy):                  {hit_ms:.3f} ms  -> {sign_ms / hit_ms:.0f}x cheaper")

    td31 = MESSAGES / "TD3.1_Recherche-de-document_response.xml"
    if td31.exists():
        data = td31.read_bytes()
        parse_ms = timeit(lambda: parse_query_response(parse_soap_response(data).body), 30)
        print(f"TD3.1 answer ({len(data) // 1024} kB, 21 entries) parsed:       {parse_ms:.2f} ms")
    else:
        print("TD3.1 answer: official samples not found (set DMP_BRIDGE_SHARED)")

    cda = b"<ClinicalDocument xmlns='urn:hl7-org:v3'><text>" + b"A" * (4 * 1024 * 1024) + b"</text></ClinicalDocument>"
    xades_ms = timeit(
        lambda: build_xades_signature(
            signature_id="s",
            submission_set_unique_id="1.2.1",
            documents=[SignedDocument("1.2.3", cda)],
            signing_time=dt.datetime.now(dt.UTC),
            key=signer.key,
            cert_chain=[signer.cert],
            profile=XadesProfile(SignatureAlgorithm.RSA_SHA256),
        ),
        5,
    )
    print(f"XAdES over a 4 MB CDA:                       {xades_ms:.1f} ms")

    body = etree.Element("{urn:ihe:iti:xds-b:2007}Document")
    etree.SubElement(body, "{http://www.w3.org/2004/08/xop/include}Include", href="cid:d@b")
    part = MtomPart("d@b", "text/xml", cda)
    _, mtom = build_mtom(etree.tostring(body), [part], boundary="MIMEb", root_id="r@b")
    inline = etree.tostring(inline_xop(body, [part]))
    print(f"MTOM vs inline base64 size for 4 MB:         {len(mtom) / 1e6:.2f} MB vs {len(inline) / 1e6:.2f} MB")
    print(f"  ratio inline/MTOM:                          {len(inline) / len(mtom):.2f}")


if __name__ == "__main__":
    main()
