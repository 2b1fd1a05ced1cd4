"""Alembic's environment: migrations run on the connection `Store.upgrade` hands in."""

from alembic import context

from charter.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `charter db upgrade` (Store.upgrade)")

context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
