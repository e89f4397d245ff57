"""Therapist inbox: threads per enrollment, feedback, snippets, triage and handover."""
