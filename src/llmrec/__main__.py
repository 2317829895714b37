"""``python -m llmrec``: the command line."""

from llmrec.apps.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
