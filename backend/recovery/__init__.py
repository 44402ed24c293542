"""Recoveries: scenarios build plans of steps (plan.py, scenarios/), the
runner walks them (runner.py), the journal keeps every step on disk so a run
survives a crash (journal.py), and service.py is what the CLI and the console
call. No Textual, no Azure SDK: Azure is reached only through the adapter."""
