-- Share of streamed calls, of calls whose usage had to be estimated or is
-- unknown, and of partial calls, by dialect.
SELECT
  dialect,
  COUNT(*) AS calls,
  AVG(CASE WHEN is_stream THEN 1.0 ELSE 0.0 END) AS streamed_share,
  AVG(CASE WHEN usage_source = 'estimated' THEN 1.0 ELSE 0.0 END) AS estimated_share,
  AVG(CASE WHEN usage_source = 'none' THEN 1.0 ELSE 0.0 END) AS no_usage_share,
  AVG(CASE WHEN complete THEN 0.0 ELSE 1.0 END) AS partial_share
FROM calls
GROUP BY dialect
ORDER BY calls DESC, dialect
