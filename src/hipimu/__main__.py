import sys

from hipimu.apps.cli import main

sys.exit(main())
