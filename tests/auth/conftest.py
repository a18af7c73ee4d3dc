# The SMTP server of the mail tests, for the account flows' tests here.
from tests.mail.conftest import smtp_server  # noqa: F401
