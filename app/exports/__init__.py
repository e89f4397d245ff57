"""Exports: pseudonymised research CSV, FHIR R4 bundles and the patient's own data."""
