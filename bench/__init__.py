"""Quill's benchmark harness: `python -m bench --help` tells how to run it and what it
measures (the docstring of bench/__main__.py)."""
