"""`python -m core ...`: see core/cli.py."""
from core.cli import main

raise SystemExit(main())
