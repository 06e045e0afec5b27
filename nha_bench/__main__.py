"""``python -m nha_bench`` = the ``nha-bench`` command (for machines where it is not installed)."""

from nha_bench.cli import app

app()
