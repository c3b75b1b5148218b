"""The PostgreSQL backend: the store, its outbox queue SQL and the notification listener."""
