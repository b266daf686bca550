"""Pure-data notebook model: the Automerge schema, migrations and .ipynb conversion."""
