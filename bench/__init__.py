"""Benchmarks of the bot against a bare Bolt app, measured in the same run (see bench/README.md).

Run with ``.venv/bin/python -m bench`` (``--quick`` for a short development run).
"""
