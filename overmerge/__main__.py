import sys

from overmerge.cli import main

sys.exit(main())
