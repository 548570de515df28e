"""The horizon the learning judges by, named once.

The outcome tracker measures three returns, `LEARNING_OUTCOME_HORIZONS` sessions after
each decision (1, 7 and 30 by default; stored as `return_1d`, `return_7d` and
`return_30d`). The frames the learner reads name each by its length in sessions
(`store.frames`), and the learning judges by the middle one: its length is `horizon`
everywhere below (`Settings.learning_horizon`), `DEFAULT` only where nothing says
otherwise.
"""

from __future__ import annotations

import re

DEFAULT = 7

#: The tracker's short, middle and long horizon in sessions (`Settings.horizons`).
Horizons = tuple[int, int, int]
#: Where nothing else says: LEARNING_OUTCOME_HORIZONS' default.
DEFAULT_HORIZONS: Horizons = (1, DEFAULT, 30)
#: The regime detector's index and volatility index, "" for none (`Settings.market`).
Market = tuple[str, str]
_RETURN = re.compile(r"^(?:side_)?return_(\d+)d$")


def returns(horizon: int) -> str:
    """The column of the return over `horizon` sessions."""
    return f"return_{horizon}d"


def side_returns(horizon: int) -> str:
    """The column of that return adjusted for the decision's side (a SELL earns the fall)."""
    return f"side_return_{horizon}d"


def length(column: str) -> int | None:
    """The horizon of a return column (`return_7d`, `side_return_7d`: 7), else None."""
    match = _RETURN.match(column)
    return int(match.group(1)) if match else None
