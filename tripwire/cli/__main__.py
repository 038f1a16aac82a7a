"""`python -m tripwire.cli`: the `tripwire` command without the installed script."""

from tripwire.cli import main

main()
