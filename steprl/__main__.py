import sys

from steprl.cli import main

sys.exit(main())
