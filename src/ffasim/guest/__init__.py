"""A guest FF-A driver like Linux's ``arm_ffa``: negotiate, map buffers, discover, message, share.

See :mod:`ffasim.guest.driver`.
"""

from .driver import DriverError as DriverError
from .driver import FfaCallError as FfaCallError
from .driver import FfaDriver as FfaDriver
from .driver import GuestState as GuestState
from .driver import NotificationBitmaps as NotificationBitmaps
from .driver import NotificationInfo as NotificationInfo
from .driver import parse_notification_info as parse_notification_info
