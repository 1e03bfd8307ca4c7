"""lbguard: predict and observe load-balancer traffic shares, and catch the
misconfigurations that skew them."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
