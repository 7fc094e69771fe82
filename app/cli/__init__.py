"""The `hearth` command line over the same core as the window: ``main`` parses and dispatches to one module per
command group."""
