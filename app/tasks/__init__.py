"""Summarize, translate and classify: what the tasks are (``spec``), how documents are cut to fit a context
window (``chunking``), the prompts (``prompts``, data under ``resources/prompts``), what a person gives a task
and how results go back out (``inputs``, ``export``), and the orchestration that runs inside the engine worker
(``orchestration``) over the ``Model`` protocol (``model``).

Nothing here imports the engine: the engine hosts the orchestration, and the app's side of a run, which starts
it on the engine and saves it in history, is ``app.task_session``."""
