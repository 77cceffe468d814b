"""Where cores sit: a system of chips forming one 2-D mesh of tiles, with XY routing.

Global core ``c`` lives on chip ``c // cores_per_chip``; chips are laid out row-major on a
``chips_x`` x ``chips_y`` grid and their tile meshes abut, so the system is one
``(chips_x * tiles_x)`` x ``(chips_y * tiles_y)`` mesh. A packet from tile ``(xs, ys)`` to tile
``(xd, yd)`` is routed X first, then Y (dimension-order routing). Its hop count is the
Manhattan distance ``|xd - xs| + |yd - ys|``; the hops that cross a chip boundary are chip
hops, the rest are on-chip east-west or north-south hops. Cores on the same tile (and so
co-located neurons) exchange packets with zero hops.

Uncontended packet latency (closed form)::

    L = t_tile + n_ew * t_hop_ew + n_ns * t_hop_ns + n_chip * t_chip_hop

Links are numbered for the event-driven network model (:mod:`~rsgn.neuromorphic.noc`): the
directed link leaving tile ``(x, y)`` in direction ``d`` (E, W, N, S = 0..3) is
``4 * (y * grid_x + x) + d``; the receive port of core ``c`` is ``4 * n_tiles + c``; the host
interface (attached to global tile (0, 0)) is ``4 * n_tiles + n_cores``.

Barrier synchronisation (a gather wave to a root tile and a release wave back) over the tiles a
run uses takes::

    T_barrier = t_barrier + 2 * (h_on * t_barrier_hop + h_chip * t_chip_hop)

where ``h_on`` / ``h_chip`` are the on-chip / chip-crossing hops between opposite corners of the
used tiles' bounding box (the farthest tile from a corner root): it grows with the tiles and the
chips involved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .profile import HardwareProfile

__all__ = ["Topology", "HopCounts", "Link", "DIRECTIONS", "Routes"]

DIRECTIONS = ("E", "W", "N", "S")

# A directed link: (direction, x, y) of its upstream tile.
Link = tuple[str, int, int]


@dataclass(frozen=True)
class Routes:
    """XY routes of a set of core pairs as flat link arrays (CSR by pair).

    ``links[ptr[i]:ptr[i + 1]]`` are the link ids of pair ``i`` in path order (the receive port
    of the destination core last); ``lat`` / ``ser`` are each link's latency and serialisation
    time per packet in ps.
    """

    ptr: np.ndarray
    links: np.ndarray
    lat: np.ndarray
    ser: np.ndarray


@dataclass(frozen=True)
class HopCounts:
    """Per-packet hop decomposition under XY routing (int64 arrays of equal length)."""

    ew: np.ndarray
    ns: np.ndarray
    chip: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """Manhattan distance in tiles: ``ew + ns + chip``."""
        return self.ew + self.ns + self.chip


class Topology:
    """A ``chips_x`` x ``chips_y`` grid of identical chips seen as one tile mesh.

    Parameters
    ----------
    profile : HardwareProfile
        Supplies the chip's mesh, cores per tile and hop latencies.
    chips_x, chips_y : int
        Chip grid; ``n_chips = chips_x * chips_y``.

    Attributes
    ----------
    n_cores, n_tiles, n_chips, grid_x, grid_y : int
    core_chip, core_x, core_y, core_tile : numpy.ndarray
        Per global core: its chip, its tile's global mesh coordinates and global tile id
        (``y * grid_x + x``).
    """

    def __init__(self, profile: HardwareProfile, chips_x: int = 1, chips_y: int = 1) -> None:
        if int(chips_x) < 1 or int(chips_y) < 1:
            raise ConfigError(f"chips_x and chips_y must be >= 1, got {chips_x}x{chips_y}")
        self.profile = profile
        chip = profile.chip
        self.chips_x, self.chips_y = int(chips_x), int(chips_y)
        self.n_chips = self.chips_x * self.chips_y
        self.tiles_x, self.tiles_y = chip.tiles_x, chip.tiles_y
        self.cores_per_tile = chip.cores_per_tile
        self.cores_per_chip = chip.cores_per_chip
        self.grid_x = self.chips_x * chip.tiles_x
        self.grid_y = self.chips_y * chip.tiles_y
        self.n_tiles = self.grid_x * self.grid_y
        self.n_cores = self.n_chips * self.cores_per_chip
        c = np.arange(self.n_cores, dtype=np.int64)
        self.core_chip = c // self.cores_per_chip
        local_tile = (c % self.cores_per_chip) // self.cores_per_tile
        self.core_x = (self.core_chip % self.chips_x) * chip.tiles_x + local_tile % chip.tiles_x
        self.core_y = (self.core_chip // self.chips_x) * chip.tiles_y + local_tile // chip.tiles_x
        self.core_tile = self.core_y * self.grid_x + self.core_x

    @classmethod
    def for_cores(cls, profile: HardwareProfile, n_cores: int) -> Topology:
        """The smallest near-square chip grid with at least ``n_cores`` cores."""
        n_chips = max(1, -(-int(n_cores) // profile.chip.cores_per_chip))
        cx = int(np.ceil(np.sqrt(n_chips)))
        cy = -(-n_chips // cx)
        return cls(profile, cx, cy)

    def describe_core(self, core: int) -> str:
        """``core 5 (chip 0, tile (1, 0))``."""
        return (
            f"core {core} (chip {int(self.core_chip[core])}, "
            f"tile ({int(self.core_x[core])}, {int(self.core_y[core])}))"
        )

    # ------------------------------------------------------------------ hops and latency
    def hops(self, src_core: np.ndarray, dst_core: np.ndarray) -> HopCounts:
        """XY-route hop counts between cores (vectorised).

        ``n_chip_x = |xs // tiles_x - xd // tiles_x|`` boundaries are crossed in X (similarly
        Y); ``n_ew = |xd - xs| - n_chip_x``; ``n_ns = |yd - ys| - n_chip_y``.
        """
        s = np.asarray(src_core, dtype=np.int64)
        d = np.asarray(dst_core, dtype=np.int64)
        xs, ys, xd, yd = self.core_x[s], self.core_y[s], self.core_x[d], self.core_y[d]
        cx = np.abs(xs // self.tiles_x - xd // self.tiles_x)
        cy = np.abs(ys // self.tiles_y - yd // self.tiles_y)
        return HopCounts(np.abs(xd - xs) - cx, np.abs(yd - ys) - cy, cx + cy)

    def packet_latency_ps(self, src_core: np.ndarray, dst_core: np.ndarray) -> np.ndarray:
        """Uncontended latency in ps: ``t_tile + n_ew t_ew + n_ns t_ns + n_chip t_chip``."""
        h = self.hops(src_core, dst_core)
        t = self.profile.timing
        return t.tile_spike_ps + h.ew * t.hop_ew_ps + h.ns * t.hop_ns_ps + h.chip * t.chip_hop_ps

    # ------------------------------------------------------------------ links
    def link_latency_ps(self, link: Link) -> int:
        """Uncontended latency of one directed link (chip hop if it crosses a chip edge)."""
        d, x, y = link
        t = self.profile.timing
        if d == "E":
            crossing = (x + 1) % self.tiles_x == 0
        elif d == "W":
            crossing = x % self.tiles_x == 0
        elif d == "N":
            crossing = (y + 1) % self.tiles_y == 0
        else:
            crossing = y % self.tiles_y == 0
        if crossing:
            return t.chip_hop_ps
        return t.hop_ew_ps if d in ("E", "W") else t.hop_ns_ps

    def route(self, src_core: int, dst_core: int) -> list[Link]:
        """The directed links of the XY route from ``src_core``'s tile to ``dst_core``'s."""
        x, y = int(self.core_x[src_core]), int(self.core_y[src_core])
        xd, yd = int(self.core_x[dst_core]), int(self.core_y[dst_core])
        path: list[Link] = []
        while x != xd:
            if xd > x:
                path.append(("E", x, y))
                x += 1
            else:
                path.append(("W", x, y))
                x -= 1
        while y != yd:
            if yd > y:
                path.append(("N", x, y))
                y += 1
            else:
                path.append(("S", x, y))
                y -= 1
        return path

    def link_loads(self, src_core: np.ndarray, dst_core: np.ndarray) -> dict[str, np.ndarray]:
        """Packets per directed link under XY routing (vectorised with difference arrays).

        Returns
        -------
        dict
            ``{"E"|"W"|"N"|"S": int64 array (grid_y, grid_x)}``, indexed by the link's upstream
            tile. The sum over all links equals the total hop count.
        """
        s = np.asarray(src_core, dtype=np.int64)
        d = np.asarray(dst_core, dtype=np.int64)
        gx, gy = self.grid_x, self.grid_y
        xs, ys, xd, yd = self.core_x[s], self.core_y[s], self.core_x[d], self.core_y[d]
        out = {}
        # X segment on row ys.
        diff = np.zeros((gy, gx + 1), dtype=np.int64)
        m = xd > xs
        np.add.at(diff, (ys[m], xs[m]), 1)
        np.add.at(diff, (ys[m], xd[m]), -1)
        out["E"] = np.cumsum(diff, axis=1)[:, :gx]
        diff = np.zeros((gy, gx + 1), dtype=np.int64)
        m = xd < xs
        np.add.at(diff, (ys[m], xd[m] + 1), 1)
        np.add.at(diff, (ys[m], xs[m] + 1), -1)
        out["W"] = np.cumsum(diff, axis=1)[:, :gx]
        # Y segment on column xd.
        diff = np.zeros((gy + 1, gx), dtype=np.int64)
        m = yd > ys
        np.add.at(diff, (ys[m], xd[m]), 1)
        np.add.at(diff, (yd[m], xd[m]), -1)
        out["N"] = np.cumsum(diff, axis=0)[:gy, :]
        diff = np.zeros((gy + 1, gx), dtype=np.int64)
        m = yd < ys
        np.add.at(diff, (yd[m] + 1, xd[m]), 1)
        np.add.at(diff, (ys[m] + 1, xd[m]), -1)
        out["S"] = np.cumsum(diff, axis=0)[:gy, :]
        return out

    def max_link_load(self, src_core: np.ndarray, dst_core: np.ndarray) -> int:
        """Largest number of packets crossing any one directed link."""
        if len(src_core) == 0:
            return 0
        return int(max(int(a.max()) for a in self.link_loads(src_core, dst_core).values()))

    # ------------------------------------------------------------------ link ids
    @property
    def n_links(self) -> int:
        """Mesh links (4 per tile) + one receive port per core + the host interface."""
        return 4 * self.n_tiles + self.n_cores + 1

    @property
    def host_link(self) -> int:
        """Link id of the host interface (attached to global tile (0, 0))."""
        return 4 * self.n_tiles + self.n_cores

    def link_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per link id: latency (ps), serialisation per packet (ps) and kind (0 east-west,
        1 north-south, 2 chip crossing, 3 receive port, 4 host interface).

        A mesh link that crosses a chip edge is a chip-to-chip link (``chip_hop`` latency,
        ``chip_link_packet`` serialisation); receive ports and the host link get their times
        from the traffic that uses them (0 here).
        """
        t = self.profile.timing
        n = self.n_links
        lat = np.zeros(n, dtype=np.int64)
        ser = np.zeros(n, dtype=np.int64)
        kind = np.full(n, 3, dtype=np.int64)
        tile = np.arange(self.n_tiles, dtype=np.int64)
        x, y = tile % self.grid_x, tile // self.grid_x
        cross = np.stack(
            [
                (x + 1) % self.tiles_x == 0,  # E
                x % self.tiles_x == 0,  # W
                (y + 1) % self.tiles_y == 0,  # N
                y % self.tiles_y == 0,  # S
            ],
            axis=1,
        )
        base = np.array([0, 0, 1, 1], dtype=np.int64)
        k = np.where(cross, 2, base[None, :]).ravel()
        kind[: 4 * self.n_tiles] = k
        lat_by = np.array([t.hop_ew_ps, t.hop_ns_ps, t.chip_hop_ps], dtype=np.int64)
        ser_by = np.array([t.link_packet_ps, t.link_packet_ps, t.chip_link_packet_ps], np.int64)
        lat[: 4 * self.n_tiles] = lat_by[k]
        ser[: 4 * self.n_tiles] = ser_by[k]
        kind[self.host_link] = 4
        lat[self.host_link] = t.host_io_ps
        ser[self.host_link] = t.host_io_ps
        return lat, ser, kind

    def route_links(self, src_core: np.ndarray, dst_core: np.ndarray) -> Routes:
        """The XY routes of core pairs as link ids (vectorised): the mesh links X first, then
        Y, then the destination core's receive port. A source core of -1 is the host: its
        route starts with the host interface, then runs from tile (0, 0)."""
        s = np.asarray(src_core, dtype=np.int64)
        d = np.asarray(dst_core, dtype=np.int64)
        host = s < 0
        sc = np.where(host, 0, s)
        xs = np.where(host, 0, self.core_x[sc])
        ys = np.where(host, 0, self.core_y[sc])
        xd, yd = self.core_x[d], self.core_y[d]
        dx, dy = xd - xs, yd - ys
        nx, ny = np.abs(dx), np.abs(dy)
        h = nx + ny
        n_links = h + 1 + host
        ptr = np.zeros(s.size + 1, dtype=np.int64)
        np.cumsum(n_links, out=ptr[1:])
        total = int(ptr[-1])
        owner = np.repeat(np.arange(s.size, dtype=np.int64), n_links)
        pos = np.arange(total, dtype=np.int64) - ptr[owner]
        hh = host[owner].astype(np.int64)
        step = pos - hh  # index along the mesh path (-1: the host link)
        o_nx, o_h = nx[owner], h[owner]
        in_x = (step >= 0) & (step < o_nx)
        in_y = (step >= o_nx) & (step < o_h)
        sx, sy = np.sign(dx)[owner], np.sign(dy)[owner]
        cx = np.where(in_x, xs[owner] + sx * step, xd[owner])
        cy = np.where(in_y, ys[owner] + sy * (step - o_nx), ys[owner])
        dir_x = np.where(sx > 0, 0, 1)
        dir_y = np.where(sy > 0, 2, 3)
        mesh = 4 * (cy * self.grid_x + cx) + np.where(in_x, dir_x, dir_y)
        links = np.where(in_x | in_y, mesh, 4 * self.n_tiles + d[owner])
        links = np.where(step < 0, self.host_link, links)
        lat, ser, _ = self.link_tables()
        return Routes(ptr, links, lat[links], ser[links])

    # ------------------------------------------------------------------ barrier
    def barrier_span(self, cores: np.ndarray) -> tuple[int, int]:
        """(on-chip hops, chip-crossing hops) between opposite corners of the bounding box of
        the tiles holding ``cores``: the path length of the barrier's gather wave."""
        c = np.asarray(cores, dtype=np.int64)
        if c.size == 0:
            return 0, 0
        x, y = self.core_x[c], self.core_y[c]
        x0, x1, y0, y1 = int(x.min()), int(x.max()), int(y.min()), int(y.max())
        chip = (x1 // self.tiles_x - x0 // self.tiles_x) + (y1 // self.tiles_y - y0 // self.tiles_y)
        return (x1 - x0) + (y1 - y0) - chip, chip

    def barrier_ps(self, cores: np.ndarray) -> int:
        """Barrier time over the tiles holding ``cores`` (module docstring)."""
        t = self.profile.timing
        on, chip = self.barrier_span(cores)
        return t.barrier_ps + 2 * (on * t.barrier_hop_ps + chip * t.chip_hop_ps)
