"""GGUF model files: what a header says (a local file, or the first bytes of one on the Hub), read without
loading the weights. ``facts`` turns a header into a model's facts, ``header`` is the parser under it, and
``remote`` fetches the header of a file that is not here."""
