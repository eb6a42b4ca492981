"""Which layers an image shares with the other local images, and which of them is its base.

A layer is identified by its chain id (OCI image spec), which covers the layer and every layer below
it: the same diff id on top of a different stack is a different layer, stored separately. So two
images share a layer exactly when their chains hold the same chain id, and since a chain id pins the
whole stack below it, the layers an image shares always form the bottom of its chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from dockerscope.service.models import BaseImage, ImageSummary, LayerRow, LayerStack


def chain_ids(diff_ids: Sequence[str]) -> tuple[str, ...]:
    """`chain[0] = diff[0]`, `chain[n] = sha256(chain[n-1] + " " + diff[n])`."""
    chain: list[str] = []
    for diff_id in diff_ids:
        if chain:
            digest = hashlib.sha256(f"{chain[-1]} {diff_id}".encode()).hexdigest()
            chain.append(f"sha256:{digest}")
        else:
            chain.append(diff_id)
    return tuple(chain)


def find_sharers(image_id: str, chains: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """For each chain id of the image, the other images (in `chains` order) whose chain holds it."""
    users: dict[str, list[str]] = {chain_id: [] for chain_id in chains.get(image_id, ())}
    for other_id, chain in chains.items():
        if other_id == image_id:
            continue
        for chain_id in chain:
            if chain_id in users:
                users[chain_id].append(other_id)
    return {chain_id: tuple(ids) for chain_id, ids in users.items()}


def layer_sizes(stack: LayerStack, chain: Sequence[str]) -> tuple[int | None, ...]:
    """The size of each layer of the chain, from the history row that made it; None where the
    history mapping could not tell which row that was."""
    by_chain_id = {row.chain_id: row.size for row in stack.rows if row.chain_id}
    return tuple(by_chain_id.get(chain_id) for chain_id in chain)


class SizeSplit(NamedTuple):
    shared: int
    unique: int
    unknown: int


def split_sizes(
    chain: Sequence[str], sizes: Sequence[int | None], sharers: Mapping[str, Sequence[str]], total: int
) -> SizeSplit:
    """Split an image's size as `docker system df -v` does: a layer is shared when another image
    uses its chain id; everything else is unique.

    Layers without a known size (an ambiguous history mapping) together weigh what the known
    layers leave of `total`. When they are all shared, or all unique, that weight goes to that
    side; when they straddle the shared bottom of the stack it is reported as unknown rather than
    guessed, so shared + unique + unknown == total always holds.
    """
    shared = sum(size or 0 for chain_id, size in zip(chain, sizes, strict=True) if sharers.get(chain_id))
    unplaced = [bool(sharers.get(chain_id)) for chain_id, size in zip(chain, sizes, strict=True) if size is None]
    leftover = total - sum(size or 0 for size in sizes)
    unknown = 0
    if unplaced and all(unplaced):
        shared += leftover
    elif any(unplaced):
        unknown = leftover
    return SizeSplit(shared=shared, unique=total - shared - unknown, unknown=unknown)


def _created_order(image: ImageSummary) -> tuple[bool, datetime | None, str]:
    return (image.created is None, image.created, image.id)


def base_candidates(
    image: ImageSummary, images: Sequence[ImageSummary], chains: Mapping[str, Sequence[str]]
) -> tuple[ImageSummary, ...]:
    """The local images whose complete chain is the longest prefix of this image's chain, oldest
    first (they all have the same chain).

    An image with the same chain as ours is our base only if it was created earlier: otherwise it
    was built on us, or next to us, and two images with equal chains would each be the other's base.
    """
    chain = tuple(chains.get(image.id, ()))
    candidates: list[ImageSummary] = []
    best = 0
    for other in images:
        other_chain = tuple(chains.get(other.id, ()))
        if other.id == image.id or not other_chain or chain[: len(other_chain)] != other_chain:
            continue
        if len(other_chain) == len(chain) and not (
            image.created is not None and other.created is not None and other.created < image.created
        ):
            continue
        if len(other_chain) > best:
            best, candidates = len(other_chain), []
        if len(other_chain) == best:
            candidates.append(other)
    return tuple(sorted(candidates, key=_created_order))


def history_is_prefix(base: Sequence[LayerRow], rows: Sequence[LayerRow]) -> bool:
    """Whether the image's history starts with the whole history of `base`, as it does when the
    image was built FROM it (a tie with the same layers but other metadata does not)."""
    if len(base) > len(rows):
        return False
    return all(
        (ours.created, ours.created_by, ours.size, ours.comment)
        == (theirs.created, theirs.created_by, theirs.size, theirs.comment)
        for theirs, ours in zip(base, rows[: len(base)], strict=True)
    )


def describe_base(candidates: Sequence[ImageSummary], layer_count: int, history_count: int | None) -> BaseImage:
    """Every tag of every tied image; an untagged one goes by its short id."""
    names = tuple(name for candidate in candidates for name in candidate.tags or (candidate.short_id,))
    return BaseImage(
        image_ids=tuple(candidate.id for candidate in candidates),
        names=names,
        layer_count=layer_count,
        history_count=history_count,
    )
