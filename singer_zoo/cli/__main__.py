"""`python -m singer_zoo.cli ...` = `singer-zoo ...`."""
import sys

from singer_zoo.cli import main

sys.exit(main())
