"""Will a model run here, and how fast: the memory and speed forecast before a load.

``estimate`` sizes a model under a load plan from its header (and, exactly, from a ``dry_run`` of the installed
llama.cpp in a one-shot child) and gives the verdict; ``model_check`` is the assessment of one model on this
machine with settings that fit; ``load_tracker`` keeps every load's forecast beside what it really used, which
calibrates later forecasts; ``task_time`` says how long a document task should take.
"""
