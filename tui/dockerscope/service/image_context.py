"""How an image relates to the other images of a snapshot: the layers it shares, its size split,
its base image, for any source. Needs every image's chain, kept here once read."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from dockerscope.service.errors import ObjectNotFound
from dockerscope.service.models import BaseImage, ImageContext, ImageDetail, ImageSummary, Snapshot
from dockerscope.service.sharing import (
    SizeSplit,
    base_candidates,
    describe_base,
    find_sharers,
    history_is_prefix,
    layer_sizes,
    split_sizes,
)

# Chains are read at most this many at a time for a context: for a daemon, that leaves a worker of
# its pool free, so a poll or a detail the user asked for is not queued behind them all.
CONTEXT_CONCURRENCY = 3

# Who shares each of the image's layers, its size split, and the images that may be its base.
Relations = tuple[dict[str, tuple[str, ...]], SizeSplit, tuple[ImageSummary, ...]]


class ImageContexts:
    """Works out image contexts for any source, from three things it can do: give an image's
    detail (`image_detail`, through its cache), give an image's chain ids by id (`read_chain`,
    raising ObjectNotFound once the image is gone), and run a function in a worker thread
    (`in_worker`)."""

    def __init__(
        self,
        image_detail: Callable[[ImageSummary], Awaitable[ImageDetail]],
        read_chain: Callable[[str], Awaitable[tuple[str, ...]]],
        in_worker: Callable[[Callable[[], Relations]], Awaitable[Relations]],
    ) -> None:
        self._image_detail = image_detail
        self._read_chain = read_chain
        self._in_worker = in_worker
        # Chain ids by image id: an id names one config, so an entry never goes stale.
        self._chains: dict[str, tuple[str, ...]] = {}
        self._chain_round: asyncio.Future[set[str]] | None = None

    def remember(self, detail: ImageDetail) -> None:
        """Keep the chain of an image whose detail was fetched anyway."""
        self._chains[detail.id] = detail.chain

    async def context(self, image: ImageSummary, snapshot: Snapshot) -> ImageContext:
        """How the image relates to the other images of the snapshot: the layers it shares, its
        size split, its base image.

        Needs the chain of every image, so it inspects each image it has not inspected before (an
        image id's layers never change, so that happens once per image): keep it out of the poll.
        Images removed meanwhile are left out, and the context says it is incomplete.
        """
        detail = await self._image_detail(image)
        chains, complete = await self._snapshot_chains(snapshot)
        chains[image.id] = detail.chain

        def relate() -> Relations:
            # In proportion to every image's layers: off the loop.
            sharers = find_sharers(image.id, chains)
            split = split_sizes(
                detail.chain, layer_sizes(detail.layers, detail.chain), sharers, detail.layers.total_size
            )
            return sharers, split, base_candidates(image, snapshot.images, chains)

        sharers, split, candidates = await self._in_worker(relate)
        base: BaseImage | None = None
        if candidates:
            candidates, history_count, found = await self._base_history(candidates, detail)
            complete = complete and found
            base = describe_base(candidates, len(chains[candidates[0].id]), history_count)
        return ImageContext(
            sharers=sharers,
            base=base,
            shared_size=split.shared,
            unique_size=split.unique,
            complete=complete,
            unknown_size=split.unknown,
        )

    async def _snapshot_chains(self, snapshot: Snapshot) -> tuple[dict[str, tuple[str, ...]], bool]:
        """The chain of every image in the snapshot, and whether none of them vanished meanwhile.

        Callers share one round of inspects, as polls share one request set: a context asked for
        while another is being worked out (the user moving through the list) waits for that round
        rather than starting the same inspects again."""
        listed = {image.id for image in snapshot.images}
        for image_id in self._chains.keys() - listed:
            del self._chains[image_id]  # removed images: keeps the cache as large as the image list
        vanished: set[str] = set()
        while missing := [image_id for image_id in listed if image_id not in self._chains and image_id not in vanished]:
            if self._chain_round is None or self._chain_round.done():
                self._chain_round = asyncio.ensure_future(self._inspect_chains(missing))
            vanished |= await asyncio.shield(self._chain_round)
        chains = {image.id: self._chains[image.id] for image in snapshot.images if image.id in self._chains}
        return chains, len(chains) == len(listed)

    async def _inspect_chains(self, image_ids: list[str]) -> set[str]:
        """Read chains a few at a time; returns the ids of the images that vanished."""
        limit = asyncio.Semaphore(CONTEXT_CONCURRENCY)
        vanished: set[str] = set()

        async def fetch(image_id: str) -> None:
            async with limit:
                try:
                    chain = await self._read_chain(image_id)
                except ObjectNotFound:
                    vanished.add(image_id)
                    return
            self._chains[image_id] = chain

        await asyncio.gather(*(fetch(image_id) for image_id in image_ids))
        return vanished

    async def _base_history(
        self, candidates: tuple[ImageSummary, ...], detail: ImageDetail
    ) -> tuple[tuple[ImageSummary, ...], int | None, bool]:
        """Find, among images with the same chain, the one this image was built FROM: the first
        whose whole history starts this image's history. It goes first; its history length tells
        where the base ends in this image's history (None when none matches). Also says whether
        every candidate looked at was still there."""
        found = True
        for index, candidate in enumerate(candidates):
            try:
                rows = (await self._image_detail(candidate)).layers.rows
            except ObjectNotFound:
                found = False
                continue
            if history_is_prefix(rows, detail.layers.rows):
                return (candidate, *candidates[:index], *candidates[index + 1 :]), len(rows), found
        return candidates, None, found
