-- Declarative event filters (docs/API.md, "Filters"). filter is the hook's
-- filter document as compact JSON, NULL for none (every event of the type
-- is delivered). Fan-out inserts rows for filter-less hooks in SQL as
-- before and evaluates the filtered ones in the server; the partial index
-- finds those without touching the others. Numbered 008: 006 and 007 are
-- left to concurrent work. Adding a nullable column rewrites no rows.
ALTER TABLE webhooks ADD COLUMN filter TEXT;
CREATE INDEX webhooks_filtered ON webhooks (event_type) WHERE filter IS NOT NULL AND is_active;
