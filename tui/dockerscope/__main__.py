from dockerscope.cli import main

raise SystemExit(main())
