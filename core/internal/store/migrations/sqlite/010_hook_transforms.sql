-- Plugin transforms (docs/PLUGINS.md, "Transforms"). transform is the
-- hook's {"name": ..., "kwargs": {...}} as compact JSON, NULL for none
-- (the request is sent as built). The claim reads it with the hook; no
-- query selects on it, so it has no index. Numbered 010: 009 is left to
-- concurrent work. Adding a nullable column rewrites no rows.
ALTER TABLE webhooks ADD COLUMN transform TEXT;
