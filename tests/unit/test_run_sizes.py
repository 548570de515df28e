"""`run` sizes its simulation by producer when --days and --symbols are not given: the
AMC-shaped run is the tiered experiment's world over its two years (decision 016)."""

from __future__ import annotations

import pytest

from amc_learning.cli import parser
from amc_learning.cli.jobs import check_simulation_args


@pytest.mark.parametrize(("argv", "sizes"), [
    (["run"], (250, 200)),
    (["run", "--producer", "amc-trader"], (500, 300)),
    (["run", "--producer", "amc-trader", "--days", "30"], (30, 300)),
    (["simulate", "--symbols", "50"], (250, 50)),
])
def test_sizes_by_producer_unless_given(argv, sizes):
    args = parser().parse_args(argv)
    check_simulation_args(args)
    assert (args.days, args.symbols) == sizes
