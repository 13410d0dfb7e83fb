"""The IP market's domain model: aggregates, events, values and rules.

Pure: no SQLAlchemy, click or I/O here. Aggregates check rules in public methods and
record facts through private `@event` methods whose bodies re-run on every replay.
"""
