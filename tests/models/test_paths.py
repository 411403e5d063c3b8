import pytest

from edgefuse.errors import ConfigError
from edgefuse.models.paths import PathSet


def test_progressive_paths():
    ps = PathSet.progressive(4)
    assert len(ps) == 5
    assert ps[0] == (False,) * 4 and ps[4] == (True,) * 4
    assert [PathSet.depth_stages(d) for d in ps] == [0, 1, 2, 3, 4]


def test_exhaustive_and_parse():
    assert len(PathSet.exhaustive(4)) == 16
    ps = PathSet.parse("0000,1000,0101")
    assert ps[2] == (False, True, False, True)
    assert PathSet.depth_stages(ps[2]) == 4  # depth must run up to the last fused cell
    with pytest.raises(ConfigError):
        PathSet.parse("0000,0000")
    with pytest.raises(ConfigError):
        PathSet.parse("00x0")


def test_fallback_picks_cheapest_superset():
    ps = PathSet.progressive(4)
    # only paths 0, 2, 4 exported: choice 1 (fuse cell 1) is served by path 2, 3 by 4
    assert ps.fallback_for(ps[1], [0, 2, 4]) == 2
    assert ps.fallback_for(ps[3], [0, 2, 4]) == 4
    assert ps.fallback_for(ps[0], [0, 2, 4]) == 0
    with pytest.raises(ConfigError):
        ps.fallback_for(ps[4], [0, 1])
