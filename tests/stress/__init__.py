"""Stress tier: real ddi-lite processes under attack or crashed on purpose (marked `stress`).

Each case bounds its own load and time to seconds; run only this tier with
`pytest -q -m stress`.
"""
