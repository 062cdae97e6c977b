"""Tools for developing tanglec itself (fuzzers shared by bench/ and tests/); not part of the CLI."""
