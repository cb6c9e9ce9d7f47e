"""One ml_collections config per script: ``get_config(preset)``; the docstring gives each preset's command,
headline number and run time on 2 CPU cores."""
