"""Which domain error each unique constraint stands for (see app/core/db.py ConstraintErrors).

A service checks first and raises these itself; when two requests race past that check, the
constraint decides, and the loser gets the same answer.
"""

from app.core.db_errors import ConstraintErrors
from app.models import Base
from app.users.errors import EmailTaken, UsernameTaken

CONSTRAINT_ERRORS = ConstraintErrors(
    Base.metadata,
    {
        "uq_users_username_key": UsernameTaken,
        "uq_users_email": EmailTaken,
    },
)
