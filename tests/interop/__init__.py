"""FHIR interoperability tests."""
