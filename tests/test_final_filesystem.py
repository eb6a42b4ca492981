"""The final filesystem replayed straight from listings equals the one the full analysis gives,
and comparing two stacks from their listings equals comparing their analyses: checked on
generated stacks with removals, opaque directories, implied parents, directories replaced by
files and back, and a shared prefix."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dockerscope.service.compare import compare_final, compare_listings
from dockerscope.service.file_analysis import FileStatus, analyze_layers, filesystem_at
from dockerscope.service.final_filesystem import final_filesystem, final_filesystems
from dockerscope.service.layer_files import LayerEntry, LayerListing
from layer_stacks import listings, stack, writes_below_a_file


def analysed_final(layers: list[tuple[str, LayerListing]]) -> dict[str, tuple[LayerEntry, int]]:
    files = analyze_layers(layers)
    return {
        change.path: (change.entry, change.layer)
        for change in filesystem_at(files, len(layers) - 1)
        if change.status is not FileStatus.REMOVED and change.entry is not None
    }


@settings(max_examples=150, deadline=None)
@given(st.lists(listings(), min_size=1, max_size=5))
def test_the_replay_from_listings_matches_the_analysis(layers: list[LayerListing]) -> None:
    assume(not writes_below_a_file(layers))
    assert final_filesystem(stack(layers, "a")) == analysed_final(stack(layers, "a"))


@settings(max_examples=120, deadline=None)
@given(
    st.lists(listings(), max_size=3),
    st.lists(listings(), max_size=3),
    st.lists(listings(), max_size=3),
)
def test_comparing_listings_matches_comparing_analyses(
    shared: list[LayerListing], left_own: list[LayerListing], right_own: list[LayerListing]
) -> None:
    assume(shared + left_own and shared + right_own)
    assume(not writes_below_a_file(shared + left_own) and not writes_below_a_file(shared + right_own))
    left, right = stack(shared + left_own, "l"), stack(shared + right_own, "r")
    expected = compare_final(analysed_final(left), analysed_final(right), len(shared))
    assert compare_listings(left, right, len(shared)) == expected
    ours, theirs = final_filesystems(left, right, len(shared))
    assert (ours, theirs) == (analysed_final(left), analysed_final(right))
