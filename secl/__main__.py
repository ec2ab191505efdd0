from secl.cli import main

raise SystemExit(main())
