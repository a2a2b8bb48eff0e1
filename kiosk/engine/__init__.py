"""The headless engine: stages, the pipeline that streams between them, and the events it emits.

Nothing in this package imports Qt or prometheus_client; the UI and telemetry observe its events.
"""
