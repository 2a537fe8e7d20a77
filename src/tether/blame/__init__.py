"""Blame: which commit's render last changed each field of an object tether manages, who
wrote a live value that differs from Git, and the drift timeline of an app.

Split by stage: ``history`` (which commits to look at), ``renders`` (the app rendered at
each of them, through the one render pipeline and its cache), ``fields`` (an object as field
paths), ``attribute`` (pure: renders → the commit that last changed each field), ``live``
(managedFields → who wrote each field), ``report`` (rows, table, JSON) and ``drift`` (the
timeline from the audit trail).
"""

DEFAULT_DEPTH = 50
"""Commits of each Git source's history blame looks at, from the synced revision back."""
