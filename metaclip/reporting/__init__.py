"""Reporting on a finished run: the summary (summary), the data card (datacard, with plots) and
the exact expected curated size as a function of t (expected_size); a worldwide run's
per-language table and thresholds (languages)."""
