"""What this computer can do: memory, processor, graphics, memory speed, in facts and in plain words.

``detect`` gives the ``Machine`` (``machine``) from the readings of ``probes``: the operating system's, read in
this process, and llama.cpp's, asked in a one-shot child (``llama_probe``) because only the engine worker and
one-shot children load llama.cpp. ``memory_speed`` measures how fast memory reads, ``cache`` keeps what was
measured or asked in ``hardware.json`` between starts, and ``description`` says it all in plain words.

Detection must never take the app down: every probe is a small callable whose failure (a missing library,
an absent ctypes symbol, a subprocess that fails) is logged at debug level and read as "nothing found".
Tests replace the probes with recorded answers from other machines (``tests/data/hardware``).
"""
