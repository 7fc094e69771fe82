"""Comparisons: one input given to 2–4 models, run side by side with speed and memory measured, and the
person's verdict kept. Qt-free: the Compare page and `hearth compare` both drive ``Comparer``."""
