"""`python -m kiln ...` runs the `kiln` command line."""

from kiln.cli import main

if __name__ == "__main__":
    main()
