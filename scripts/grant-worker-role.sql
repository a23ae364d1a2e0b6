-- Give the worker role (psql variable :worker) DML rights only: no DDL, no
-- ownership.  Run after every migration, as the owner role:
--   psql -v worker=chat_app -f scripts/grant-worker-role.sql
GRANT USAGE ON SCHEMA chat TO :"worker";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA chat TO :"worker";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA chat TO :"worker";
REVOKE ALL ON chat.schema_migrations FROM :"worker";
