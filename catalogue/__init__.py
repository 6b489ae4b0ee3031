"""The catalogue: settings, database models, repositories, serializers and errors.

Everything that reads or writes the PostGIS catalogue lives here, so that `api`, `ingest`
and `cubes` share one implementation of the SQL and of the item/row mapping.
"""
