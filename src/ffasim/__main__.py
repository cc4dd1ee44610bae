"""``python -m ffasim``: the command line, for environments where the ``ffasim`` script is not
on PATH (a scratch copy of the source tree, a virtualenv not activated)."""

from .cli import main

main()
