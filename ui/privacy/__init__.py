"""What leaves this computer: working offline, the network requests Hearth made, and the Hugging Face token.
``page.py`` decides, ``privacy_dialog.py`` shows the requests."""
