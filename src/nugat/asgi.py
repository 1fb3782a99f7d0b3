"""The ASGI entry point the server processes import (settings come from NUGAT_* variables)."""

import gc

from nugat.app import create_app

app = create_app()

# What the start made (modules, tables, templates: ~100,000 objects) lives as long as the process: kept
# out of the cyclic collector's passes, whose full pass over them took 50-150 ms inside whichever request
# it fell on (the first search of a worker, a p99).
gc.collect()
gc.freeze()
