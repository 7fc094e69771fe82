"""Summarize, translate and classify: what the tasks are (``spec``), how documents are cut to fit a context
window (``chunking``), the prompts (``prompts``, data under ``resources/prompts``), the orchestration that
runs inside the engine worker (``runner``) and the app-side session that saves each run (``session``)."""
