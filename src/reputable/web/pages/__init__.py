"""Pages for people: the public lookup and removal pages, and the operator's dashboard.

``site.install`` adds them to the API's app. This package's ``__init__`` stays empty of
imports: `serve` reads ``pages.settings`` at start-up without loading the web framework.
"""
