-- The cascades from messages to webhook_events and from webhook_events to
-- delivery_attempts become statement-level triggers (docs/BENCHMARKS.md,
-- "Cascades without foreign-key checks"). A foreign key runs a check
-- query per inserted row (SELECT 1 FROM ONLY messages x WHERE id = $1 FOR
-- KEY SHARE OF x): two per delivery, for references the server makes
-- itself — a message is inserted in the statement that inserts its
-- events, and an attempt only by the completion that updated (and so
-- locked) its event. What the keys' ON DELETE CASCADE did, the triggers
-- do, once per deleting statement over its transition table:
-- - deleting a message deletes its events (through webhook_events_message);
-- - deleting an event, whoever deletes it (a purge, a message's trigger,
--   the cascade of webhook_events.webhook_id from a deleted hook or user),
--   deletes its attempts (through delivery_attempts_event).
-- An attempt committed by a completion that held its event's row lock
-- before the delete is seen by the trigger's DELETE (in READ COMMITTED
-- each statement of a PL/pgSQL function takes a new snapshot), so no
-- attempt outlives its event. webhook_events.webhook_id keeps its foreign
-- key: an event inserted by a publish racing the hook's deletion must not
-- stay pending with no hook.
-- = ANY (ARRAY(…)) is an index scan (webhook_events_message,
-- delivery_attempts_event) for one row or a million.
-- Dropping a foreign key and creating a trigger only take their locks for
-- an instant: nothing is scanned or rewritten. They are taken first, all
-- at once, in the order a publish takes them (messages, then
-- webhook_events): dropping webhook_events' key locks webhook_events and
-- then messages, and a publish of a node still on the previous release
-- waiting for messages meanwhile would deadlock with the migration.
LOCK TABLE messages, webhook_events, delivery_attempts IN ACCESS EXCLUSIVE MODE;
-- The keys by what they are, not by name: an operator may have renamed or
-- recreated one.
DO $$
DECLARE k record;
BEGIN
    FOR k IN SELECT c.conrelid::regclass AS tbl, c.conname FROM pg_constraint c
        WHERE c.contype = 'f' AND (c.conrelid, c.confrelid) IN
            (('webhook_events'::regclass, 'messages'::regclass), ('delivery_attempts'::regclass, 'webhook_events'::regclass))
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', k.tbl, k.conname);
    END LOOP;
END
$$;

-- One function for both: TG_ARGV names the dependent table, in the
-- deleted table's schema whatever the session's search_path, and its column.
CREATE FUNCTION whisperer_cascade() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DELETE FROM %I.%I WHERE %I = ANY (ARRAY(SELECT id FROM gone))', TG_TABLE_SCHEMA, TG_ARGV[0], TG_ARGV[1]);
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_cascade AFTER DELETE ON messages
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION whisperer_cascade('webhook_events', 'message_id');
CREATE TRIGGER webhook_events_cascade AFTER DELETE ON webhook_events
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION whisperer_cascade('delivery_attempts', 'event_id');
