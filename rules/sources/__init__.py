"""Remote git sources: fetched once into a content-addressed store, pinned by `stacks.lock`.

`redact` keeps credentials out of messages, `store` holds mirrors and checkouts,
`lockfile` reads and writes the pins, `resolver` ties them together for the planner.
"""
