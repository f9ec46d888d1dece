"""FHIR R4 in and out: the mapping as data, Bundles → subject records, results → FHIR."""
