from __future__ import annotations

from branchyard.cli.main import main

raise SystemExit(main())
