"""`python -m tripwire.cli`: the `tripwire` command without the installed script."""

from tripwire.cli import main

# Guarded: `up` starts its processes with multiprocessing's spawn, which imports this
# module again in each of them.
if __name__ == "__main__":
    main()
