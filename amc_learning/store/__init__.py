"""The database: every SQL statement of the engine lives in this package.

The migrations and their runner, the idempotent sink, what the learner reads (frames) and
writes (results, the params history), the report's and `status`'s figures, backup,
restore and export. The exceptions a caller may need to tell apart are named here, so
nothing outside this package imports psycopg.
"""

from __future__ import annotations

import psycopg

#: Any database failure.
StoreError = psycopg.Error
#: The database cannot be reached or the connection broke: transient, retry later.
Unavailable: tuple[type[psycopg.Error], ...] = (psycopg.OperationalError,
                                                psycopg.InterfaceError)
#: The database refused a row (a constraint, a value out of range): the data, not the server.
RowRefused: tuple[type[psycopg.Error], ...] = (psycopg.DataError, psycopg.IntegrityError)
