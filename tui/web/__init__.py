"""The page `aztriage serve` hands to browsers (app_index.html, a Jinja template)."""
