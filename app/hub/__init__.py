"""Models from the Hugging Face Hub: search and a repository's files (``search``), resumable downloads
(``downloads``), the curated catalog (``catalog``) and the few of its models that suit this computer
(``suggestions``), and the access token for gated models (``credentials``).

Every request goes through ``app.network``'s one door. The models already on this computer are the library's
(``app.library``), not the Hub's: a finished download is handed to it.
"""
