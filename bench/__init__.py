"""Benchmarks of the message decoding path (not shipped; run `python bench/decode.py`)."""
