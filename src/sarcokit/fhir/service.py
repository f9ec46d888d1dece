"""One call for every surface (CLI, API, CDS Hooks): a Bundle → its record, result and FHIR."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sarcokit.api import assess
from sarcokit.engine import EstimateAsm
from sarcokit.fhir.inbound import FhirRecord, read_bundle
from sarcokit.fhir.outbound import result_resources, transaction
from sarcokit.i18n import Lang
from sarcokit.result import Result


@dataclass(frozen=True)
class BundleAssessment:
    """A Bundle read and assessed: where each value came from, and the result."""

    read: FhirRecord
    result: Result

    def to_dict(self) -> dict[str, Any]:
        """The result contract, with a `fhir` block: the record read, the date, used and ignored."""
        return {**self.result.to_dict(), "fhir": self.read.to_dict()}

    def write_back(self, key: str | None = None) -> dict[str, Any]:
        """The result as an idempotent transaction Bundle for the patient's FHIR server."""
        patient = self.read.patient or "unknown"
        stamp = self.read.as_of.isoformat()
        sources = sorted(
            {u.resource.split("#")[0] for u in self.read.used if u.code != "birthDate"}
        )
        resources = result_resources(
            self.result,
            f"Patient/{patient}",
            stamp,
            key or f"{patient}/{stamp}",
            [s for s in sources if s.startswith("Observation/")],
        )
        return transaction(resources)


def assess_bundle(
    bundle: Any,
    *,
    definitions: Sequence[str] | None = None,
    lang: Lang = "en",
    as_of: date | None = None,
    estimate_asm: EstimateAsm | None = None,
) -> BundleAssessment:
    """Read a FHIR R4 Bundle for one patient and assess the record it gives."""
    read = read_bundle(bundle, as_of)
    result = assess(read.record, definitions=definitions, lang=lang, estimate_asm=estimate_asm)
    return BundleAssessment(read, result)
