"""Errors of the DMP wire layer and the DMP's own refusals (SOAP faults, registry errors) as values.

Who broke the protocol decides the class: `DmpParamsError` is a value our caller gave that cannot go on
the wire (INVALID_PARAMS); `DmpInputError` is something the DMP (or a file) sent that we cannot read
(INVALID_INPUT). A well-formed refusal by the DMP is not an exception here: it is a `DmpFault` value, and
`DmpFault.to_error()` gives the BridgeError whose data.code the table of `bridge.dmp.refusals` picks for
the DMP's code (DMP_FAULT when unknown), always carrying the DMP's own code in `dmpCode`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.dmp.refusals import error_code_for
from bridge.errors import BridgeError, ErrorCode

__all__ = ["DmpFault", "DmpInputError", "DmpParamsError", "RegistryError"]


class DmpParamsError(BridgeError):
    """A caller-supplied value that cannot be put on the DMP wire."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.INVALID_PARAMS, detail)


class DmpInputError(BridgeError):
    """A DMP answer (or XML file) that does not have the expected shape."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.INVALID_INPUT, detail)


@dataclass(frozen=True, kw_only=True)
class RegistryError:
    """One `RegistryError` of an ebRS `RegistryErrorList` (errorCode is the DMP's own code)."""

    error_code: str
    code_context: str
    severity: str
    location: str | None = None

    @property
    def is_error(self) -> bool:
        """True for severity Error (warnings do not make a request fail)."""
        return self.severity.endswith(":Error") or self.severity == "Error"


@dataclass(frozen=True, kw_only=True)
class DmpFault:
    """A refusal by the DMP: a SOAP fault, or a failed RegistryResponse with its error list."""

    code: str
    subcode: str | None = None
    reason: str = ""
    detail: str | None = None
    errors: tuple[RegistryError, ...] = ()

    @property
    def dmp_code(self) -> str:
        """The most specific code the DMP gave: first registry error code, else fault subcode, else code."""
        for err in self.errors:
            if err.is_error:
                return err.error_code
        if self.errors:
            return self.errors[0].error_code
        return self.subcode or self.code

    def to_error(self) -> BridgeError:
        """The BridgeError the service layer raises (code from `bridge.dmp.refusals`); detail is the DMP's
        code (never patient data)."""
        return BridgeError(error_code_for(self.dmp_code), self.dmp_code, dmpCode=self.dmp_code)
