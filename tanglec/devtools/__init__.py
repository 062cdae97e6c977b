"""Development tools: spec and data generators, the front end's and the command line's fuzzers, the errors.md
generator. They import the package like any user; the package never imports them (the top layer of pyproject's
contracts)."""
