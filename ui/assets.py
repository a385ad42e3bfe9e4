# ruff: noqa: E501
"""Static text of the web UI: style sheet and login page (the review screen's own: ui.review_assets).

Kept apart from the Python so that the long CSS/JS lines do not clutter the handlers.
"""

from __future__ import annotations

from ui.review_assets import REVIEW_CSS, SCRIPT, SKELETON

__all__ = ["CSS", "LOGIN_PAGE", "SCRIPT", "SKELETON"]

CSS = REVIEW_CSS + """
.gradio-container { max-width: 100% !important; font-size: 17px; }
footer { display: none !important; }
.topbar { display: flex; align-items: center; gap: 24px; font-size: 18px; padding: 6px 4px; }
.topbar .brand { font-weight: 700; font-size: 20px; margin-right: auto; }
.topbar a { font-weight: 600; padding: 10px 16px; border-radius: 8px; background: #eef2f7; color: #123;
            text-decoration: none; }
.topbar a:hover { background: #dde5ef; }
/* engineer screens */
.eng-cards { display: grid; grid-template-columns: repeat(2, 1fr); gap: 12px; }
.eng-card { background: #f3f5f8; border-radius: 10px; padding: 12px 16px; }
.eng-card span { display: block; font-size: 15px; color: #555; }
.eng-card b { font-size: 24px; }
.eng-card.warn { background: #fdf1e7; }
.eng-card.bad { background: #fbecea; grid-column: 1 / -1; }
.eng-note { font-size: 15px; color: #444; }
button.lg { min-height: 52px; font-size: 18px; }
.tab-container button, button[role="tab"] { font-size: 19px !important; padding: 10px 22px !important; }
"""


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in · scratch inspection</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; background: #f3f5f8; margin: 0; }}
 form {{ max-width: 420px; margin: 12vh auto; background: #fff; padding: 36px; border-radius: 14px;
        box-shadow: 0 2px 12px rgba(0,0,0,.08); display: flex; flex-direction: column; gap: 14px; }}
 h1 {{ margin: 0 0 8px; font-size: 26px; }}
 label {{ font-size: 17px; font-weight: 600; }}
 input {{ font-size: 20px; padding: 12px; border: 2px solid #c9d1db; border-radius: 8px; }}
 button {{ font-size: 20px; font-weight: 700; padding: 14px; border: 0; border-radius: 8px;
          background: #1f5fa8; color: #fff; cursor: pointer; }}
 .err {{ color: #a40000; font-weight: 600; font-size: 17px; }}
</style></head>
<body><form method="post" action="/login">
<h1>Scratch inspection</h1>
{error}
<label for="name">User name</label><input id="name" name="name" autocomplete="username" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<button type="submit" id="login">Log in</button>
</form></body></html>"""
