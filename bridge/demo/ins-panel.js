// Demo DPI: the INS qualification panel. The DMP calls use the INS the INSi téléservice returns (qualified),
// never a NIR read from the Vitale card: a child on a parent's card carries the parent's NIR.
// Uses only the public SDK method `ins.search` (bridge.insSearch).

/** Whether the card holds this beneficiary's own NIR (else the INSi is asked by traits, with the sex). */
export function needsSex(beneficiary) {
  return !beneficiary.hasOwnIns;
}

/** Ask the INSi for the beneficiary's INS: from the card, or by its traits (`sex` needed then). */
export async function qualifyIns(bridge, { vitaleReader, index, sex, cpsReader }) {
  const vitale = { beneficiary: index, ...(vitaleReader ? { reader: vitaleReader } : {}), ...(sex ? { sex } : {}) };
  return bridge.insSearch({ vitale, auth: "cps", ...(cpsReader ? { reader: cpsReader } : {}) });
}

/** The patient reference of the DMP calls, from the qualified identity (INS, OID, CDA traits). */
export function patientFromIdentity(identity) {
  return {
    ins: identity.ins,
    oid: identity.oid,
    lastName: identity.birthName,
    firstName: identity.firstName,
    gender: identity.sex,
    birthDate: identity.birthDate.replaceAll("-", ""),
  };
}

function line(label, value) {
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  dd.textContent = value;
  return [dt, dd];
}

/** Show the qualified identity in `list` (a <dl>). */
export function renderIdentity(list, identity, source) {
  const [y, m, d] = identity.birthDate.split("-");
  const birth = m === "00" || d === "00" ? `${y} (date lunaire)` : `${d}/${m}/${y}`;
  list.replaceChildren(
    ...line("INS", `${identity.ins} (${identity.kind}, OID ${identity.oid})`),
    ...line("Nom de naissance", identity.birthName),
    ...line("Prénoms", identity.firstNames),
    ...line("Sexe", identity.sex === "F" ? "Féminin" : "Masculin"),
    ...line("Naissance", `${birth}${identity.birthPlace ? ` — lieu ${identity.birthPlace}` : ""}`),
    ...line("Obtenu", source === "vitale" ? "INSi, depuis la carte Vitale" : "INSi, par les traits d'identité"),
  );
  list.dataset.ins = identity.ins;
  list.hidden = false;
}
