"""The run ledger and what it records: runs, their statuses, metrics, queries and archives."""
