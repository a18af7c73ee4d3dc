"""Which domain error each unique constraint stands for (see app/core/db.py ConstraintErrors).

A service checks first and raises these itself; when two requests race past that check, the
constraint decides, and the loser gets the same answer.
"""

from app.core.db_errors import ConstraintErrors
from app.idempotency.errors import IdempotencyKeyInFlight
from app.models import Base
from app.users.errors import EmailTaken, UsernameTaken

CONSTRAINT_ERRORS = ConstraintErrors(
    Base.metadata,
    {
        "uq_users_username_key": UsernameTaken,
        "uq_users_email": EmailTaken,
        # Two requests with one key that ran at once (the lock of app/idempotency makes it rare).
        "uq_idempotency_keys_user_id_key": IdempotencyKeyInFlight,
    },
)
