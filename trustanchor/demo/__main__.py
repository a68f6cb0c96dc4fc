"""``python -m trustanchor.demo``: run the whole demo (see trustanchor.demo.launcher)."""

from trustanchor.demo.launcher import main

raise SystemExit(main())
