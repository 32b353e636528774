"""Where each gene and link of a graph.json goes in the report's network picture: pure geometry, no markup.

Each group of linked genes is laid out by networkx's spring_layout (fixed seed: the same picture every time) in
its own box, the largest group first; genes without links go in rows below. networkx (numpy) is imported only
when a layout is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

LAYOUT_SEED = 7
WIDTH = 900
MARGIN, LEGEND_HEIGHT, ROW_HEIGHT, COLUMN_WIDTH = 16, 34, 30, 110


@dataclass(frozen=True)
class PlacedNode:
    """A gene of the picture: graph.json's node and its position."""

    id: str
    symbol: str
    known: bool
    rank: Any
    probability: float | None
    x: float
    y: float


@dataclass(frozen=True)
class PlacedEdge:
    """A link between two genes: its ends, weight, line width and opacity (both grow with the weight)."""

    source: PlacedNode
    target: PlacedNode
    weight: float
    width: float
    opacity: float


@dataclass(frozen=True)
class NetworkLayout:
    """The whole picture: nodes in graph.json's order, edges from the weakest up, the isolated genes (also in
    `nodes`), where the "not linked" label starts (x, y), and the picture's size."""

    nodes: list[PlacedNode]
    edges: list[PlacedEdge]
    isolated: list[PlacedNode]
    isolated_label: tuple[float, float]
    width: int
    height: float


def layout_network(graph: dict[str, Any], *, width: int = WIDTH) -> NetworkLayout:
    """The layout of a graph.json (`{"nodes": [{id, symbol, class, probability, rank}], "links": [{source,
    target, weight}]}`); links to genes not among the nodes and self-links are left out."""
    import networkx as nx  # numpy inside: imported only when a picture is drawn

    genes = {str(node.get("id", "")): node for node in graph.get("nodes", [])}
    ids = list(genes)
    net = nx.Graph()
    net.add_nodes_from(ids)
    for link in graph.get("links", []):
        a, b = str(link.get("source", "")), str(link.get("target", ""))
        if a in genes and b in genes and a != b:
            weight = finite(link.get("weight"))
            net.add_edge(a, b, weight=1.0 if weight is None else weight)
    isolated = [n for n in ids if net.degree(n) == 0]

    inner = width - 2 * MARGIN
    pos, bottom = _pack_components(nx, net, ids, left=MARGIN, top=LEGEND_HEIGHT, width=inner)
    columns = max(1, inner // COLUMN_WIDTH)
    iso_top = bottom + (34 if isolated else 0)
    for i, node in enumerate(isolated):
        row, col = divmod(i, columns)
        pos[node] = (MARGIN + 10 + col * COLUMN_WIDTH, iso_top + row * ROW_HEIGHT + ROW_HEIGHT / 2)
    height = max(iso_top + math.ceil(len(isolated) / columns) * ROW_HEIGHT, bottom) + 10

    placed = {node: _place(node, genes[node], pos[node]) for node in ids}
    w_max = max((d["weight"] for _, _, d in net.edges(data=True)), default=1.0) or 1.0
    edges = []
    for a, b, d in sorted(net.edges(data=True), key=lambda e: e[2]["weight"]):
        share = max(0.0, d["weight"]) / w_max
        edges.append(PlacedEdge(placed[a], placed[b], d["weight"], 0.4 + 2.6 * share, 0.15 + 0.45 * share))
    return NetworkLayout(
        nodes=list(placed.values()),
        edges=edges,
        isolated=[placed[n] for n in isolated],
        isolated_label=(MARGIN, iso_top - 12),
        width=width,
        height=height,
    )


def _place(node: str, gene: dict[str, Any], xy: tuple[float, float]) -> PlacedNode:
    return PlacedNode(
        id=node,
        symbol=str(gene.get("symbol", node)),
        known=gene.get("class") == "Known",
        rank=gene.get("rank", "?"),
        probability=finite(gene.get("probability")),
        x=xy[0],
        y=xy[1],
    )


def finite(value: Any) -> float | None:
    """`value` as a finite float, or None (missing, not a number, NaN or infinite)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _pack_components(
    nx: Any, graph: Any, order: list[str], *, left: float, top: float, width: float
) -> tuple[dict[str, tuple[float, float]], float]:
    """Positions of the linked genes: one box per connected group, packed in rows; and the bottom y used."""
    rank = {node: i for i, node in enumerate(order)}
    groups = [sorted(c, key=rank.__getitem__) for c in nx.connected_components(graph) if len(c) > 1]
    groups.sort(key=lambda g: (-len(g), rank[g[0]]))
    pad, label_room = 14.0, 62.0
    pos: dict[str, tuple[float, float]] = {}
    x, y, shelf = left, top, 0.0
    for group in groups:
        side = max(130.0, 90.0 * math.sqrt(len(group)))
        box_w, box_h = min(width, 1.5 * side), min(560.0, side)
        if x + box_w > left + width + 0.5 and x > left:
            x, y, shelf = left, y + shelf, 0.0
        sub = nx.Graph()
        sub.add_nodes_from(group)
        sub.add_edges_from(graph.subgraph(group).edges(data=True))
        layout = nx.spring_layout(sub, seed=LAYOUT_SEED, weight="weight", k=3.0 / math.sqrt(len(group)))
        for node, (fx, fy) in _spread(group, layout).items():
            pos[node] = (x + pad + fx * (box_w - 2 * pad - label_room), y + pad + fy * (box_h - 2 * pad))
        x += box_w
        shelf = max(shelf, box_h)
    return pos, y + shelf


def _spread(nodes: list[str], layout: dict[str, Any], share: float = 0.4) -> dict[str, tuple[float, float]]:
    """Layout coordinates scaled to 0..1, blended with their ranks so that dense clusters open up."""
    spread: dict[str, list[float]] = {node: [] for node in nodes}
    last = max(1, len(nodes) - 1)
    for axis in (0, 1):
        values = {node: float(layout[node][axis]) for node in nodes}
        low, high = min(values.values()), max(values.values())
        ranked = sorted(nodes, key=lambda n: (values[n], n))
        for i, node in enumerate(ranked):
            scaled = 0.5 if high == low else (values[node] - low) / (high - low)
            spread[node].append(scaled if len(nodes) < 3 else (1 - share) * scaled + share * i / last)
    return {node: (xy[0], xy[1]) for node, xy in spread.items()}
