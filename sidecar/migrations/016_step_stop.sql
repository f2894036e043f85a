-- A realtime block's step sends its diff with everything after it, its COMMIT included, in one
-- round trip (sidecar/sync/step.ts, "a plain block"). That round trip is right only when the diff
-- found what such a step expects: no event gone from Ponder, at most a block's events. This stops
-- it otherwise, by an error with its own code and the reason as its DETAIL (PostgreSQL skips the
-- rest of the round trip, its COMMIT too), and the sidecar runs the step again the usual way,
-- deciding in between. PostgreSQL logs each stop as an ERROR (docs/operations.md).
CREATE FUNCTION stakesync.stop_unless(ok boolean, why text) RETURNS boolean
  LANGUAGE plpgsql AS $$
BEGIN
  IF ok IS NOT TRUE THEN
    RAISE EXCEPTION 'stakesync: %: the step runs again, deciding in the sidecar', why
      USING ERRCODE = 'SS001', DETAIL = why;
  END IF;
  RETURN true;
END $$;
