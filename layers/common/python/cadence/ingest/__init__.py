"""Ingest: files dropped under incoming/ become cleaned customer profiles, order aggregates and engagement.

Kept import-free so that the DAL can import `cadence.ingest.models` without loading pandas.
The entry point is `cadence.ingest.service.ingest_files`.
"""
