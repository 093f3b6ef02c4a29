"""``python -m services``: the headless command line (see services/cli.py)."""

from services.cli.main import main

raise SystemExit(main())
