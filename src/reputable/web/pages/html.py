"""The page shell, the stylesheet and small HTML helpers (pure: strings in, strings out).

Pages are plain HTML built with escaped f-strings: no template engine, no JavaScript, and
nothing loaded from outside the server (the stylesheet is served at ``/static/web.css``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape
from typing import Final

CSS: Final = """\
:root{--ink:#1a1a1a;--muted:#4a4a4a;--line:#c8c8c8;--bg:#fff;--link:#0645ad;
--red:#a4161a;--red-bg:#fde8e8;--yellow:#6b4f00;--yellow-bg:#fff4cc;--green:#1b5e20;--green-bg:#e6f4e7}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header,main,footer{max-width:62rem;margin:0 auto;padding:0 1rem}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center;border-bottom:1px solid var(--line);padding:.75rem 1rem}
header a{color:var(--ink);text-decoration:none;font-weight:600}
nav{display:flex;flex-wrap:wrap;gap:.25rem 1rem}
nav a{font-weight:400;color:var(--link)}
a{color:var(--link)}
h1{font-size:1.6rem;line-height:1.25;overflow-wrap:anywhere}
h2{font-size:1.25rem;margin-top:2rem}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%}
.status{display:inline-block;padding:.15rem .6rem;border-radius:.3rem;font-weight:600}
.listed,.red{background:var(--red-bg);color:var(--red)}
.clean,.green{background:var(--green-bg);color:var(--green)}
.pending,.yellow{background:var(--yellow-bg);color:var(--yellow)}
.muted{color:var(--muted)}
form{margin:.75rem 0}
label{display:block;font-weight:600;margin:.5rem 0 .2rem}
input[type=text],input[type=email],input[type=password],textarea,select{width:100%;max-width:32rem;font:inherit;padding:.4rem;border:1px solid #767676;border-radius:.25rem}
textarea{min-height:6rem}
button{font:inherit;padding:.45rem 1rem;border:1px solid #0b3d91;background:#0b3d91;color:#fff;border-radius:.25rem;cursor:pointer;margin-top:.5rem}
button.secondary{background:#fff;color:#0b3d91}
.trap{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}
.notice{border-left:.3rem solid var(--line);padding:.5rem 1rem;margin:1rem 0;background:#f6f6f6}
.notice.red{border-color:var(--red)}.notice.green{border-color:var(--green)}.notice.yellow{border-color:#b58900}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(18rem,1fr));gap:1rem}
figure{margin:0}figcaption{font-weight:600;margin-bottom:.25rem}
svg{max-width:100%;height:auto}
.inline{display:inline}
@media (max-width:40rem){
.stack thead{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}
.stack tr{display:block;border-bottom:1px solid var(--line);padding:.4rem 0}
.stack td{display:block;border:0;padding:.1rem .25rem;overflow-wrap:break-word}
.stack td::before{content:attr(data-label) ": ";font-weight:600}
}
footer{border-top:1px solid var(--line);margin-top:2rem;padding:1rem;color:var(--muted);font-size:.9rem}
"""


def esc(value: object) -> str:
    """Return *value* as HTML-escaped text."""
    return escape(str(value), quote=True)


def when(value: datetime | float | None, empty: str = "—") -> str:
    """Return a UTC instant as 'YYYY-MM-DD HH:MM UTC' (*empty* for None)."""
    if value is None:
        return empty
    if not isinstance(value, datetime):
        from datetime import UTC

        value = datetime.fromtimestamp(value, UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def table(head: Iterable[str], rows: Iterable[Iterable[str]], caption: str = "") -> str:
    """Return a table; *rows* cells are HTML already (escape them first); "None." when empty."""
    rows = list(rows)
    if not rows:
        return "<p class=muted>None.</p>"
    cap = f"<caption class=muted>{esc(caption)}</caption>" if caption else ""
    names = [esc(h) for h in head]
    ths = "".join(f"<th scope=col>{h}</th>" for h in names)
    body = "".join(
        "<tr>"
        + "".join(f'<td data-label="{h}">{c}</td>' for h, c in zip(names, row, strict=True))
        + "</tr>"
        for row in rows
    )
    return f"<div class=scroll><table class=stack>{cap}<thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table></div>"


def bullets(items: Iterable[str]) -> str:
    """Return a list of already-escaped items."""
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def hidden(name: str, value: str) -> str:
    """Return a hidden input."""
    return f'<input type=hidden name="{esc(name)}" value="{esc(value)}">'


def page(title: str, body: str, *, admin: bool = False, csrf: str = "") -> str:
    """Return a whole page: doctype, language, viewport, stylesheet, header, *body*, footer."""
    if admin:
        links = (
            '<a href="/admin">Overview</a><a href="/admin/queue">Removal queue</a>'
            '<a href="/admin/range">Ranges</a><a href="/admin/simulate">Policy simulation</a>'
        )
        logout = (
            f'<form class=inline method=post action="/admin/logout">{hidden("csrf", csrf)}'
            "<button class=secondary type=submit>Log out</button></form>"
            if csrf
            else ""
        )
        nav = f'<nav aria-label="Administration">{links}{logout}</nav>'
    else:
        nav = '<nav aria-label="Site"><a href="/">Look up an address</a></nav>'
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · reputable</title>"
        '<link rel=stylesheet href="/static/web.css"></head>'
        f'<body><header><a href="/">reputable</a>{nav}</header>'
        f"<main>{body}</main>"
        "<footer>reputable — a self-hosted IP and domain reputation list."
        ' Machine-readable: <a href="/api/v1/docs">HTTP API</a>.</footer></body></html>'
    )
