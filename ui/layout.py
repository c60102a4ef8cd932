"""Narrow-screen (phone) layout rules, shared by the pages: plain CSS, no script.

Streamlit stacks columns on screens narrower than 640 px. Two places need more than that: the
Characters page puts its editor before the list (the list can be long), and the Queue rows keep a
label on every stacked cell, with status pills shown whole.
"""
from __future__ import annotations

import streamlit as st

NARROW = "@media (max-width: 640px)"
CHARACTERS_LAYOUT = "characters_layout"  # the key of the container around the list and editor columns
QUEUE_ROW = "qrow-"  # prefix of the keys of the Queue's row containers
QUEUE_HEAD = "qhead-"
CELL_LABEL = "cs-cell-label"  # class of the per-cell labels, shown only on narrow screens

_CSS = f"""<style>
[data-testid="stElementContainer"]:has(.{CELL_LABEL}) {{ display: none; }}
[data-testid="stMarkdownContainer"] span[class*="badge"], .stMarkdown [data-testid="stMarkdownContainer"] p {{
  overflow-wrap: anywhere; }}
{NARROW} {{
  .st-key-{CHARACTERS_LAYOUT} > div > [data-testid="stHorizontalBlock"] {{ flex-direction: column-reverse; }}
  [class*="st-key-{QUEUE_HEAD}"] {{ display: none; }}
  [class*="st-key-{QUEUE_ROW}"] > div > [data-testid="stHorizontalBlock"] {{ flex-flow: row wrap; gap: 0.25rem 1rem; }}
  [class*="st-key-{QUEUE_ROW}"] > div > [data-testid="stHorizontalBlock"] > [data-testid="stColumn"] {{
    flex: 1 1 40%; min-width: 40%; width: auto; }}
  [class*="st-key-{QUEUE_ROW}"] [data-testid="stElementContainer"]:has(.{CELL_LABEL}) {{ display: block; }}
  [class*="st-key-{QUEUE_ROW}"] span[class*="badge"] {{ white-space: nowrap; }}
  .{CELL_LABEL} {{ font-size: 0.8rem; color: rgba(49, 51, 63, 0.6); }}
  [data-testid="stButtonGroup"] div:has(> button) {{ flex-wrap: wrap; }}
}}
</style>"""


def narrow_screen_rules() -> None:
    """Add the rules to the page (once per run, from the entrypoint; takes no space)."""
    st.html(_CSS)


def cell_label(label: str) -> None:
    """A stacked cell's label: shown only on narrow screens, where the table's header row is hidden."""
    st.markdown(f"<span class='{CELL_LABEL}'>{label}</span>", unsafe_allow_html=True)
