"""Sizes from aspect and tier, or from explicit width and height."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placeholders.errors import InvalidSize, UnknownOption
from placeholders.resolution import ASPECTS, TIERS, Size, resolve_size, size_for, snap


@pytest.mark.parametrize(
    ("aspect", "tier", "expected"),
    [
        ("1:1", "512", Size(512, 512)),
        ("1:1", "1MP", Size(1024, 1024)),
        ("16:9", "1MP", Size(1344, 768)),
        ("9:16", "1MP", Size(768, 1344)),
        ("16:9", "2K", Size(2496, 1408)),
        ("16:9", "4K", Size(3776, 2112)),
    ],
)
def test_aspect_and_tier_give_the_familiar_sizes(aspect: str, tier: str, expected: Size) -> None:
    assert size_for(aspect, tier) == expected


@pytest.mark.parametrize("aspect", list(ASPECTS))
@pytest.mark.parametrize("tier", list(TIERS))
def test_every_size_fits_its_budget_in_multiples_of_64(aspect: str, tier: str) -> None:
    size = size_for(aspect, tier)
    assert size.width * size.height <= TIERS[tier]
    assert size.width % 64 == 0 and size.height % 64 == 0
    assert size.width * size.height >= 0.7 * TIERS[tier]


@pytest.mark.parametrize("aspect", list(ASPECTS))
def test_every_size_is_close_to_its_aspect(aspect: str) -> None:
    ratio_w, ratio_h = ASPECTS[aspect]
    size = size_for(aspect, "1MP")
    assert size.width / size.height == pytest.approx(ratio_w / ratio_h, rel=0.05)


def test_the_4k_tier_has_more_than_double_the_2k_pixels() -> None:
    assert TIERS["4K"] > 2 * TIERS["2K"]


def test_tiers_can_be_replaced_by_the_caller() -> None:
    assert size_for("1:1", "tiny", tiers={"tiny": 256 * 256}) == Size(256, 256)


def test_a_different_step_gives_multiples_of_that_step() -> None:
    size = size_for("16:9", "1MP", step=8)
    assert size.width % 8 == 0 and size.height % 8 == 0
    assert size.width * size.height <= TIERS["1MP"]


def test_an_unknown_aspect_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(UnknownOption) as caught:
        size_for("5:4", "1MP")
    assert caught.value.kind == "aspect"
    assert caught.value.valid == tuple(ASPECTS)
    assert "16:9" in str(caught.value)


def test_an_unknown_tier_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(UnknownOption, match="choose one of: 512, 768, 1MP, 2K, 4K"):
        size_for("1:1", "8K")


def test_a_budget_below_one_step_is_refused() -> None:
    with pytest.raises(InvalidSize, match="smaller than 64x64"):
        size_for("1:1", "x", tiers={"x": 100})


def test_explicit_sides_snap_to_the_nearest_step_and_at_least_one_step() -> None:
    assert snap(1000, 600) == Size(1024, 576)
    assert snap(1, 95) == Size(64, 64)
    assert snap(96, 97) == Size(128, 128)


@pytest.mark.parametrize(("width", "height"), [(0, 512), (512, -64), (True, 512)])
def test_sides_that_are_not_positive_pixels_are_refused(width: int, height: int) -> None:
    with pytest.raises(InvalidSize, match="positive whole number"):
        snap(width, height)


def test_resolve_size_prefers_explicit_sides() -> None:
    assert resolve_size(width=1000, height=1000) == Size(1024, 1024)


def test_resolve_size_defaults_to_square_one_megapixel() -> None:
    assert resolve_size() == Size(1024, 1024)
    assert resolve_size(aspect="9:16") == Size(768, 1344)


@pytest.mark.parametrize(
    "kwargs",
    [{"width": 512}, {"height": 512}, {"width": 512, "height": 512, "aspect": "1:1"}],
)
def test_resolve_size_refuses_half_or_mixed_requests(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidSize):
        resolve_size(**kwargs)  # type: ignore[arg-type]


@given(st.integers(1, 16384), st.integers(1, 16384), st.sampled_from([8, 16, 64]))
def test_snapped_sides_are_multiples_within_half_a_step(width: int, height: int, step: int) -> None:
    size = snap(width, height, step=step)
    for given_side, side in ((width, size.width), (height, size.height)):
        assert side % step == 0
        assert side >= step
        assert abs(side - given_side) <= step / 2 or side == step
