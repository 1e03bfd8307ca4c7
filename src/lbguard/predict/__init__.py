"""Share prediction: routing rules, then each pool's balancing algorithm."""

from lbguard.predict.engine import BALANCERS, predict

__all__ = ["BALANCERS", "predict"]
