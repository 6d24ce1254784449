"""The ``ragmesh`` command line: start the mesh, ingest, ask, inspect.

Exit codes: 0 success; 1 the request failed or some documents/components are not OK;
2 a usage error; 3 the mesh cannot be reached (or is not ready).
"""

from ragmesh.cli.main import main

__all__ = ["main"]
