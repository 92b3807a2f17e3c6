import sys

from forest_mlops.cli import main

sys.exit(main())
