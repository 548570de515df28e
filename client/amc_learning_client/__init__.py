"""The learning engine's HTTP API for Python 3.9+, standard library only (see `client`)."""

from amc_learning_client.breaker import Breaker
from amc_learning_client.client import FALLBACK, LearningClient, Params, Written

__all__ = ["FALLBACK", "Breaker", "LearningClient", "Params", "Written"]
__version__ = "0.2.0"
