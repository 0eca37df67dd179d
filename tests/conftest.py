"""Process-wide test settings."""

import os

# python-telegram-bot 22 warns inside RetryAfter's constructor unless time periods are opted in
# as timedeltas; with warnings as errors that warning would replace the exception itself.
os.environ.setdefault("PTB_TIMEDELTA", "true")
