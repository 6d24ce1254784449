"""``python -m ragmesh.cli``: the same as the ``ragmesh`` command."""

from ragmesh.cli import main

main()
