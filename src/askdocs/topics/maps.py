"""The map of a collection: each text a point (2-D UMAP), coloured by its topic.

`save_png` draws it with matplotlib (outliers grey, a legend of each topic's keywords);
`save_html` writes one self-contained file (inline SVG and a few lines of script, nothing
fetched) where hovering a point shows its title and clicking a topic in the legend
highlights it. Titles are data: they travel as JSON inside the page, with `<`, `>` and
`&` escaped, and the script sets them with `textContent`, never as HTML.
"""

from __future__ import annotations

import json
from pathlib import Path

from askdocs.errors import MissingDependency
from askdocs.topics.types import Topics

PALETTE = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
    "#4E79A7", "#F28E2B", "#59A14F", "#E15759", "#B07AA1", "#76B7B2", "#EDC948", "#9C755F",
]  # fmt: skip
OUTLIER = "#b8b8b8"
LEGEND = 20  # topics named in the legend; the rest are drawn, unnamed


def colour(topic: int) -> str:
    return OUTLIER if topic < 0 else PALETTE[topic % len(PALETTE)]


def _name(found: Topics, topic: int) -> str:
    t = found.topics[topic]
    return f"{t.id}: {t.label or ', '.join(t.keywords[:4])} ({t.size})"


def save_png(found: Topics, path: str | Path, *, title: str = "Topics") -> Path:
    if found.coords is None:
        raise ValueError("these topics were found without a map (map=False)")
    try:  # a Figure of its own, not pyplot: no global backend or state, safe in a thread
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependency(
            "the PNG map needs matplotlib: pip install 'askdocs[topics]'"
        ) from exc
    xy, topics = found.coords, found.assignments
    fig = Figure(figsize=(11, 8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    dot = 6 if len(xy) > 2000 else 14
    outliers = topics < 0
    if outliers.any():
        ax.scatter(xy[outliers, 0], xy[outliers, 1], s=dot * 0.7, c=OUTLIER,
                   label=f"outliers ({outliers.sum()})")  # fmt: skip
    for t in range(len(found.topics)):
        mask = topics == t
        label = _name(found, t) if t < LEGEND else None
        ax.scatter(xy[mask, 0], xy[mask, 1], s=dot, c=colour(t), label=label)
    if len(found.topics) > LEGEND:  # a line of text in the legend, no marker
        ax.plot([], [], " ", label=f"... {len(found.topics) - LEGEND} smaller topics")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(
        loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, markerscale=2, frameon=False
    )
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png")
    return out


def _json_for_html(data: object) -> str:
    """JSON safe inside a <script> element: no `</script>`, no `<!--`, no entity.

    >>> _json_for_html({"t": "</script>&"})
    '{"t": "\\\\u003c/script\\\\u003e\\\\u0026"}'
    """
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def save_html(found: Topics, path: str | Path, *, title: str = "Topics") -> Path:
    if found.coords is None:
        raise ValueError("these topics were found without a map (map=False)")
    xy = found.coords
    x0, y0 = xy.min(axis=0)
    span = (xy.max(axis=0) - xy.min(axis=0)).clip(min=1e-9)
    titles = found.titles or found.ids
    points = [
        [round(float((p[0] - x0) / span[0]), 4), round(float((p[1] - y0) / span[1]), 4), int(t),
         titles[i] or found.ids[i]]
        for i, (p, t) in enumerate(zip(xy, found.assignments, strict=True))
    ]  # fmt: skip
    legend = [[t.id, _name(found, t.id), colour(t.id)] for t in found.topics]
    if found.outliers:
        legend.append([-1, f"outliers ({found.outliers})", OUTLIER])
    data = {"title": title, "points": points, "legend": legend, "outlier": OUTLIER,
            "palette": PALETTE}  # fmt: skip
    page = _PAGE.replace("__DATA__", _json_for_html(data))
    out = Path(path)
    out.write_text(page, encoding="utf-8")
    return out


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Topics</title>
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:1rem;display:flex;gap:1rem;flex-wrap:wrap}
svg{width:min(900px,100%);height:auto;border:1px solid #ccc}
circle{opacity:.85}circle.faded{opacity:.08}
ul{list-style:none;padding:0;max-width:28rem}li{cursor:pointer;margin:.2rem 0}
li span{display:inline-block;width:.8rem;height:.8rem;border-radius:50%;margin-right:.4rem}
li.on{font-weight:bold}#hover{min-height:1.4em;width:100%}
</style></head><body>
<h1 id="title"></h1><p id="hover"></p>
<svg id="map" viewBox="0 0 1000 700" role="img" aria-label="Map of the texts by topic"></svg>
<ul id="legend"></ul>
<script type="application/json" id="data">__DATA__</script>
<script>
const data = JSON.parse(document.getElementById("data").textContent);
const NS = "http://www.w3.org/2000/svg";
const svg = document.getElementById("map");
document.getElementById("title").textContent = data.title;
document.title = data.title;
const colour = (t) => (t < 0 ? data.outlier : data.palette[t % data.palette.length]);
const dots = [];
const first = (p) => (p[2] < 0 ? -1 : 0);  // outliers drawn first, under the topics
for (const [x, y, t, name] of data.points.sort((a, b) => first(a) - first(b))) {
  const c = document.createElementNS(NS, "circle");
  c.setAttribute("cx", (10 + x * 980).toFixed(1));
  c.setAttribute("cy", (690 - y * 680).toFixed(1));
  c.setAttribute("r", data.points.length > 2000 ? 2 : 4);
  c.setAttribute("fill", colour(t));
  const tip = document.createElementNS(NS, "title");
  tip.textContent = name;
  c.append(tip);
  c.addEventListener("mouseenter", () => { document.getElementById("hover").textContent = name; });
  c.dataset.topic = t;
  dots.push(c);
  svg.append(c);
}
let chosen = null;
for (const [id, name, fill] of data.legend) {
  const li = document.createElement("li");
  const sw = document.createElement("span");
  sw.style.background = fill;
  li.append(sw, document.createTextNode(name));
  li.addEventListener("click", () => {
    chosen = chosen === id ? null : id;
    for (const other of document.querySelectorAll("#legend li")) other.classList.remove("on");
    if (chosen !== null) li.classList.add("on");
    for (const c of dots) {
      c.classList.toggle("faded", chosen !== null && Number(c.dataset.topic) !== chosen);
    }
  });
  document.getElementById("legend").append(li);
}
</script></body></html>
"""
