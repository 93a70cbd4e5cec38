#!/bin/sh
# Runs once, when the postgres volume is first created (the image's /docker-entrypoint-initdb.d):
# the citizens database, owned by $POSTGRES_USER (who loads it with `bip db load`), and the role
# the service reads it with: SELECT only, every session read-only. MLflow keeps $POSTGRES_DB.
# tests/test_deploy.py runs this script against the suite's own PostgreSQL.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v reader_password="$CITIZEN_READER_PASSWORD" <<'SQL'
CREATE ROLE citizen_reader LOGIN PASSWORD :'reader_password';
ALTER ROLE citizen_reader SET default_transaction_read_only = on;
CREATE DATABASE citizens;
\connect citizens
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO citizen_reader;
-- tables that bip db load creates later are readable by the service, and only readable
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO citizen_reader;
SQL
