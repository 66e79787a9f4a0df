import sys

from openwatch.cli import main

sys.exit(main())
