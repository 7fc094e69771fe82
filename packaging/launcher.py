"""The frozen app's main script.

PyInstaller runs its entry as ``__main__``; pointing it at ``ui/entry.py`` itself would load that module twice
(as ``__main__`` and, when imported, as ``ui.entry``). Spawned children (the engine worker, the document reader)
start this same executable and are diverted by ``multiprocessing.freeze_support()`` at the top of ``main``.
"""

import sys

from ui.entry import main

if __name__ == "__main__":
    sys.exit(main())
