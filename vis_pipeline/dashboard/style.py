"""How the page looks: colours shared by charts and tiles, and the CSS of charts and page."""

from __future__ import annotations

INBOUND_COLOR = "#3461d1"
"""Colour of inbound calls in every chart."""

OUTBOUND_COLOR = "#18a999"
"""Colour of outbound calls in every chart."""

MISSED_COLOR = "#d9344f"
"""Colour of missed calls and of the missed rate."""

HEAT_LOW = (238, 242, 255)
"""Heat map colour of an hour without calls (RGB)."""

HEAT_HIGH = (30, 58, 138)
"""Heat map colour of the busiest hour (RGB)."""

FONT = (
    '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
    '"Noto Sans", "Liberation Sans", sans-serif'
)
"""System fonts only: the page loads nothing from the network."""

SVG_CSS = f"""
svg.chart{{width:100%;height:auto;display:block;overflow:visible}}
svg .axis{{font-size:11px;fill:#6b7280;font-family:{FONT}}}
svg .grid{{stroke:#e5e7eb;stroke-width:1}}
svg .weekend{{fill:#f3f4f6}}
svg .bar:hover rect{{opacity:.85}}
svg .area{{opacity:.08}}
svg .line{{fill:none;stroke-width:2.2;stroke-linejoin:round;stroke-linecap:round}}
svg .dot{{fill:#fff;stroke-width:2}}
svg .average{{stroke:#9ca3af;stroke-width:1.2;stroke-dasharray:4 4}}
svg .average-label{{fill:#4b5563}}
svg .cell:hover rect{{stroke:#111827;stroke-width:1.5}}
svg .absent rect{{fill:#fff;stroke:#e5e7eb;stroke-dasharray:3 3}}
svg .heat-value{{font-size:10.5px;font-family:{FONT}}}
"""
"""Style of the charts, inside the page and in a chart saved on its own."""

PAGE_CSS = f"""
*{{box-sizing:border-box}}
html{{-webkit-text-size-adjust:100%}}
body{{margin:0;background:#f4f6fa;color:#1f2937;font-family:{FONT};font-size:14px;
line-height:1.45;font-variant-numeric:tabular-nums}}
main{{max-width:1180px;margin:0 auto;padding:28px 28px 40px}}
header{{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;
gap:8px 24px;margin-bottom:20px}}
h1{{font-size:26px;font-weight:650;letter-spacing:-.01em;margin:0}}
.range{{color:#4b5563;font-size:15px}}
h2{{font-size:15px;font-weight:600;margin:0 0 2px}}
.sub{{color:#6b7280;font-size:12.5px;margin:0 0 12px}}
.tiles{{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:14px;
margin-bottom:16px}}
.tile{{background:#fff;border-radius:12px;padding:14px 16px 13px;
box-shadow:0 1px 2px rgba(16,24,40,.06),0 1px 3px rgba(16,24,40,.05);
border-top:3px solid var(--accent)}}
.tile .label{{color:#6b7280;font-size:12px;text-transform:uppercase;letter-spacing:.05em;
font-weight:600}}
.tile .value{{font-size:27px;font-weight:650;margin:4px 0 2px;color:var(--accent)}}
.tile .note{{color:#6b7280;font-size:12.5px}}
.grid{{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px;
margin-bottom:16px}}
.card{{background:#fff;border-radius:12px;padding:18px 20px;
box-shadow:0 1px 2px rgba(16,24,40,.06),0 1px 3px rgba(16,24,40,.05);margin-bottom:16px;
min-width:0}}
.grid .card{{margin-bottom:0}}
.legend{{display:flex;gap:16px;color:#4b5563;font-size:12.5px;margin:-4px 0 8px}}
.legend i{{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;
vertical-align:-1px}}
{SVG_CSS}
.table-wrap{{overflow-x:auto}}
table{{border-collapse:collapse;width:100%;font-size:13.5px}}
th{{text-align:left;color:#6b7280;font-weight:600;font-size:12px;text-transform:uppercase;
letter-spacing:.04em;border-bottom:1px solid #e5e7eb;padding:8px 10px;white-space:nowrap}}
td{{border-bottom:1px solid #f0f1f4;padding:8px 10px;vertical-align:middle}}
tbody tr:hover td{{background:#f9fafb}}
th.num,td.num{{text-align:right;white-space:nowrap}}
.mono{{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;
font-size:12.5px}}
.badge{{display:inline-block;border-radius:999px;padding:1px 8px;font-size:12px;font-weight:600}}
.badge.low{{background:#fef3c7;color:#92400e}}
.badge.mid{{background:#ffedd5;color:#c2410c}}
.badge.high{{background:#fee2e2;color:#b91c1c}}
.badge.open{{background:#e0e7ff;color:#3730a3;font-weight:500}}
.spark{{display:inline-block;width:70px;height:6px;background:#eef2f7;border-radius:3px;
margin-right:8px;vertical-align:1px;overflow:hidden}}
.spark span{{display:block;height:100%;background:{INBOUND_COLOR};border-radius:3px}}
.empty{{color:#6b7280;padding:28px 0;text-align:center}}
.note{{color:#6b7280;font-size:12.5px;margin:10px 0 0}}
footer{{color:#6b7280;font-size:12px;margin-top:8px}}
footer p{{margin:4px 0}}
@media print{{body{{background:#fff}}.card,.tile{{box-shadow:none;border:1px solid #e5e7eb}}
main{{padding:0}}}}
"""
"""Style of the whole page (the charts' style included)."""
