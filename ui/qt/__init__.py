"""Qt plumbing every page shares: background operations, the bridges from the core's events to Qt signals, the
garbage collector kept on the GUI thread, item models over the core's records, and the start-up helpers (the first
paint, the input gate, pages built when first shown). Nothing here knows a page."""
