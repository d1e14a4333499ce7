"""Alembic migrations, shipped in the package and run by `flageemonitor-server db upgrade`."""
