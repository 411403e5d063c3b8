"""The `edgefuse` command line: thin edges over one core call per command."""
